package demo_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orderstream/orderstream/pkg/demo"
	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/pgtest"
	"github.com/orderstream/orderstream/pkg/postgres"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newStore returns a store on a fresh, migrated database.
func newStore(t *testing.T) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	db, err := postgres.Open(ctx, pgtest.NewDatabase(t), 5, 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := postgres.Migrate(ctx, db.DB.DB, quiet); err != nil {
		t.Fatal(err)
	}
	return postgres.NewStore(db)
}

func placeOrder(t *testing.T, store *postgres.Store, f order.Fulfillment) *order.Order {
	t.Helper()
	n := &order.NewOrder{
		CustomerName: "Ada",
		Phone:        "+44 20 7946 0000",
		Fulfillment:  f,
		Items:        []order.NewItem{{Pizza: "margherita", Size: "large", Quantity: 1}},
	}
	if f == order.Delivery {
		addr := "1 Main St"
		n.Address = &addr
	}
	o, _, err := store.CreateOrder(context.Background(), n)
	if err != nil {
		t.Fatalf("place order: %v", err)
	}
	return o
}

func statuses(t *testing.T, store *postgres.Store, id string) []order.Status {
	t.Helper()
	events, err := store.FindEvents(context.Background(), id, 0)
	if err != nil {
		t.Fatalf("find events of %s: %v", id, err)
	}
	var got []order.Status
	for _, ev := range events {
		got = append(got, ev.Status)
	}
	return got
}

func TestKitchenStep(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	delivery := placeOrder(t, store, order.Delivery)
	pickup := placeOrder(t, store, order.Pickup)
	cancelled := placeOrder(t, store, order.Pickup)
	_, _, err := store.TransitionOrder(ctx, cancelled.ID, order.Transition{Status: order.Cancelled})
	if err != nil {
		t.Fatal(err)
	}

	k := demo.New(store, time.Hour, quiet)
	// After each step: the delivery order's and the pickup order's status.
	want := [][2]order.Status{
		{order.Placed, order.Placed},
		{order.Preparing, order.Preparing},
		{order.Baking, order.Baking},
		{order.Ready, order.Ready},
		{order.OutForDelivery, order.Delivered},
		{order.Delivered, order.Delivered},
		{order.Delivered, order.Delivered},
	}
	for i, w := range want {
		if err := k.Step(ctx); err != nil {
			t.Fatalf("step %d: %v", i+1, err)
		}
		for j, o := range []*order.Order{delivery, pickup} {
			got, err := store.FindOrderByID(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != w[j] {
				t.Errorf("after step %d, %s order is %s, want %s", i+1, o.Fulfillment, got.Status, w[j])
			}
		}
	}

	wantDelivery := []order.Status{order.Placed, order.Preparing, order.Baking, order.Ready,
		order.OutForDelivery, order.Delivered}
	if diff := cmp.Diff(wantDelivery, statuses(t, store, delivery.ID)); diff != "" {
		t.Errorf("delivery events (-want +got):\n%s", diff)
	}
	wantCancelled := []order.Status{order.Placed, order.Cancelled}
	if diff := cmp.Diff(wantCancelled, statuses(t, store, cancelled.ID)); diff != "" {
		t.Errorf("cancelled order events (-want +got):\n%s", diff)
	}
}

// racingStore is the real store, except that staff move an order right after the
// kitchen has listed the open orders, as happens when both act in the same moment.
type racingStore struct {
	*postgres.Store
	t     *testing.T
	id    string
	moved bool
}

func (s *racingStore) FindOpenOrders(ctx context.Context) ([]*order.Order, error) {
	orders, err := s.Store.FindOpenOrders(ctx)
	if err == nil && !s.moved {
		s.moved = true
		tr := order.Transition{Status: order.Cancelled, Note: "Out of dough"}
		if _, _, err := s.Store.TransitionOrder(ctx, s.id, tr); err != nil {
			s.t.Errorf("staff move: %v", err)
		}
	}
	return orders, err
}

func TestKitchenLeavesMovedOrders(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	o := placeOrder(t, store, order.Pickup)
	_, _, err := store.TransitionOrder(ctx, o.ID, order.Transition{Status: order.Preparing})
	if err != nil {
		t.Fatal(err)
	}

	k := demo.New(&racingStore{Store: store, t: t, id: o.ID}, time.Hour, quiet)
	if err := k.Step(ctx); err != nil {
		t.Fatalf("step with a stale order: %v", err)
	}

	want := []order.Status{order.Placed, order.Preparing, order.Cancelled}
	if diff := cmp.Diff(want, statuses(t, store, o.ID)); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

func TestKitchenRun(t *testing.T) {
	store := newStore(t)
	o := placeOrder(t, store, order.Delivery)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- demo.New(store, 20*time.Millisecond, quiet).Run(ctx) }()

	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := store.FindOrderByID(context.Background(), o.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == order.Delivered {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still %s after 30s of a 20ms kitchen", got.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestKitchenNotes(t *testing.T) {
	store := newStore(t)
	ctx := context.Background()
	k := demo.New(store, time.Hour, quiet)

	var noted int
	for range 6 {
		placeOrder(t, store, order.Delivery)
	}
	for range 8 {
		if err := k.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}

	orders, err := store.FindOrders(ctx, order.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range orders {
		events, err := store.FindEvents(ctx, o.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range events {
			if ev.Note != "" {
				noted++
			}
		}
	}
	// Six orders of six events each, with notes on some steps but not all.
	if noted == 0 || noted >= 30 {
		t.Errorf("%d of 36 events carry a note, want some but not all", noted)
	}
}
