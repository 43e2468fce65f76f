package stream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/orderstream/orderstream/pkg/order"
)

// EventStore reads an order's stored events.
type EventStore interface {
	// FindEvents returns the order's events with a version above after, oldest first.
	FindEvents(ctx context.Context, orderID string, after int64) ([]order.Event, error)
}

// ErrLagged ends a staff feed that may have missed events; its client reconnects and
// starts again from a fresh snapshot.
var ErrLagged = errors.New("stream: feed fell behind")

// StatusMessage renders an order event as it goes on a stream: event name "status",
// one line of JSON, and the order's version as its ID when withID is set.
func StatusMessage(ev order.Event, withID bool) (Message, error) {
	data, err := json.Marshal(ev)
	if err != nil {
		return Message{}, fmt.Errorf("encode event %s/%d: %w", ev.OrderID, ev.Version, err)
	}
	m := Message{Event: "status", Data: data, At: ev.At}
	if withID {
		m.ID = strconv.FormatInt(ev.Version, 10)
	}
	return m, nil
}

// OrderProducer streams one order's events after version after: first those already
// stored, then live ones from the hub, each version exactly once and in order, up to
// and including the terminal event. It subscribes to the hub before reading the store,
// so an event committed in between arrives by one path or both, and the version check
// drops the copy; a gap (a live event ahead of the next expected version, or a lagging
// subscription) is filled from the store.
func OrderProducer(hub *Hub, store EventStore, orderID string, after int64) Producer {
	return func(ctx context.Context, emit func(Message) error) error {
		sub := hub.Subscribe(orderID)
		defer sub.Close()

		f := orderFeed{store: store, orderID: orderID, last: after, emit: emit}
		if done, err := f.catchUp(ctx); done || err != nil {
			return err
		}
		for {
			var done bool
			var err error
			select {
			case <-ctx.Done():
				return ctx.Err()
			case ev := <-sub.C:
				done, err = f.live(ctx, ev)
			case <-sub.Lagged:
				done, err = f.catchUp(ctx)
			}
			if done || err != nil {
				return err
			}
		}
	}
}

type orderFeed struct {
	store   EventStore
	orderID string
	last    int64
	emit    func(Message) error
}

// live handles an event from the hub; it reports whether the stream is complete.
func (f *orderFeed) live(ctx context.Context, ev order.Event) (bool, error) {
	switch {
	case ev.Version <= f.last:
		return false, nil
	case ev.Version > f.last+1:
		return f.catchUp(ctx)
	}
	return f.send(ev)
}

// catchUp sends the stored events after the last one sent.
func (f *orderFeed) catchUp(ctx context.Context) (bool, error) {
	events, err := f.store.FindEvents(ctx, f.orderID, f.last)
	if err != nil {
		return false, fmt.Errorf("catch up order %s after %d: %w", f.orderID, f.last, err)
	}
	for _, ev := range events {
		if ev.Version != f.last+1 {
			return false, fmt.Errorf("order %s: stored events skip from %d to %d",
				f.orderID, f.last, ev.Version)
		}
		if done, err := f.send(ev); done || err != nil {
			return done, err
		}
	}
	return false, nil
}

func (f *orderFeed) send(ev order.Event) (bool, error) {
	m, err := StatusMessage(ev, true)
	if err != nil {
		return false, err
	}
	if err := f.emit(m); err != nil {
		return false, err
	}
	f.last = ev.Version
	return ev.Terminal(), nil
}

// Snapshot returns the opening messages of a staff feed: one "snapshot" event per open
// order and the closing "ready" event.
type Snapshot func(ctx context.Context) ([]Message, error)

// BoardProducer streams every order's events for the staff board: the snapshot, then
// each status event as the hub hears it. Snapshot and live events may overlap; clients
// keep the highest version per order. A lagging subscription ends the feed (ErrLagged),
// since without IDs the only way to resume is a fresh snapshot.
func BoardProducer(hub *Hub, snapshot Snapshot) Producer {
	return func(ctx context.Context, emit func(Message) error) error {
		sub := hub.Subscribe("")
		defer sub.Close()

		opening, err := snapshot(ctx)
		if err != nil {
			return fmt.Errorf("staff feed snapshot: %w", err)
		}
		for _, m := range opening {
			if err := emit(m); err != nil {
				return err
			}
		}

		for {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-sub.Lagged:
				return ErrLagged
			case ev := <-sub.C:
				m, err := StatusMessage(ev, false)
				if err != nil {
					return err
				}
				if err := emit(m); err != nil {
					return err
				}
			}
		}
	}
}
