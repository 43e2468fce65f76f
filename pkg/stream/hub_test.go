package stream

import (
	"fmt"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

func TestHubDeliversAndFlagsLag(t *testing.T) {
	h := NewHub()
	one := h.Subscribe("a")
	all := h.Subscribe("")
	other := h.Subscribe("b")
	defer other.Close()

	h.Publish(order.Event{OrderID: "a", Version: 2})
	for _, s := range []*Subscription{one, all} {
		select {
		case ev := <-s.C:
			if ev.Version != 2 {
				t.Fatalf("got version %d", ev.Version)
			}
		case <-time.After(time.Second):
			t.Fatal("event not delivered")
		}
	}
	if len(other.C) != 0 {
		t.Fatal("an event of order a reached a subscription of order b")
	}

	// A full buffer drops events for that subscription only and flags it.
	for v := range int64(subscriptionBuffer + 10) {
		h.Publish(order.Event{OrderID: "b", Version: v})
	}
	select {
	case <-other.Lagged:
	default:
		t.Fatal("an overflowing subscription was not flagged")
	}
	if !h.Wants("b") || h.Wants("zzz") == false {
		// "all" still wants every order.
		t.Fatal("Wants is wrong")
	}

	one.Close()
	all.Close()
	one.Close()
	if h.Len() != 1 || h.Wants("a") {
		t.Fatalf("after Close: Len = %d, Wants(a) = %v", h.Len(), h.Wants("a"))
	}
	h.Resync()
	select {
	case <-other.Lagged:
	default:
		t.Fatal("Resync did not flag the subscription")
	}
}

// BenchmarkHubPublish measures handing one event to the subscriptions of its order.
func BenchmarkHubPublish(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) {
			h := NewHub()
			subs := make([]*Subscription, n)
			for i := range subs {
				subs[i] = h.Subscribe("a")
			}
			b.ResetTimer()
			for i := range b.N {
				h.Publish(order.Event{OrderID: "a", Version: int64(i)})
				for _, s := range subs {
					select {
					case <-s.C:
					default:
					}
				}
			}
		})
	}
}
