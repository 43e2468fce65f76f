// Package stream delivers order events to Server-Sent Events clients. A Hub fans the
// events that a replica hears from PostgreSQL out to the watchers it serves; a Server
// runs each stream on top of github.com/r3labs/sse/v2, with its own replay from the
// stored events, heartbeats, write deadlines and a cap on open streams.
package stream

import (
	"sync"

	"github.com/orderstream/orderstream/pkg/order"
)

// subscriptionBuffer is how many events a watcher may fall behind before it is told to
// catch up from the store instead.
const subscriptionBuffer = 64

// Hub fans events out to the subscriptions of one replica. It never blocks on a slow
// subscriber: when a subscription's buffer is full the event is dropped for it and the
// subscription is flagged as lagging, so that its owner reads what it missed from the
// store. The zero value is not usable; call NewHub.
type Hub struct {
	mu      sync.Mutex
	byOrder map[string]map[*Subscription]struct{}
	all     map[*Subscription]struct{}
}

// NewHub returns an empty hub.
func NewHub() *Hub {
	return &Hub{
		byOrder: make(map[string]map[*Subscription]struct{}),
		all:     make(map[*Subscription]struct{}),
	}
}

// Subscription receives the events of one order, or of every order.
type Subscription struct {
	// C carries events in the order the hub received them.
	C <-chan order.Event
	// Lagged is signalled when the subscription may have missed events: its buffer
	// overflowed, or the replica's listener lost its connection for a while.
	Lagged <-chan struct{}

	c       chan order.Event
	lagged  chan struct{}
	hub     *Hub
	orderID string
	once    sync.Once
}

// Subscribe starts receiving the events of the order with the given id, or of every
// order when orderID is empty. The caller must Close the subscription.
func (h *Hub) Subscribe(orderID string) *Subscription {
	s := &Subscription{
		c:       make(chan order.Event, subscriptionBuffer),
		lagged:  make(chan struct{}, 1),
		hub:     h,
		orderID: orderID,
	}
	s.C, s.Lagged = s.c, s.lagged

	h.mu.Lock()
	defer h.mu.Unlock()
	if orderID == "" {
		h.all[s] = struct{}{}
		return s
	}
	set := h.byOrder[orderID]
	if set == nil {
		set = make(map[*Subscription]struct{})
		h.byOrder[orderID] = set
	}
	set[s] = struct{}{}
	return s
}

// Close stops the subscription. It is safe to call more than once.
func (s *Subscription) Close() {
	s.once.Do(func() {
		h := s.hub
		h.mu.Lock()
		defer h.mu.Unlock()
		if s.orderID == "" {
			delete(h.all, s)
			return
		}
		set := h.byOrder[s.orderID]
		delete(set, s)
		if len(set) == 0 {
			delete(h.byOrder, s.orderID)
		}
	})
}

func (s *Subscription) deliver(ev order.Event) {
	select {
	case s.c <- ev:
	default:
		s.flagLagged()
	}
}

func (s *Subscription) flagLagged() {
	select {
	case s.lagged <- struct{}{}:
	default:
	}
}

// Publish hands an event to every subscription for its order and for all orders.
func (h *Hub) Publish(ev order.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.byOrder[ev.OrderID] {
		s.deliver(ev)
	}
	for s := range h.all {
		s.deliver(ev)
	}
}

// Wants reports whether any subscription would receive an event of the order, so that a
// listener can skip reading events nobody here watches.
func (h *Hub) Wants(orderID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.all) > 0 || len(h.byOrder[orderID]) > 0
}

// Resync flags every subscription as lagging: events may have been missed, for instance
// while the listener was reconnecting.
func (h *Hub) Resync() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, set := range h.byOrder {
		for s := range set {
			s.flagLagged()
		}
	}
	for s := range h.all {
		s.flagLagged()
	}
}

// Len returns the number of open subscriptions.
func (h *Hub) Len() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := len(h.all)
	for _, set := range h.byOrder {
		n += len(set)
	}
	return n
}
