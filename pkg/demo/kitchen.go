// Package demo runs a simulated kitchen for demonstrations: it moves open orders along
// their usual path at a human pace, so that someone trying orderstream alone sees the
// tracking page come to life without a second person at the staff board.
package demo

import (
	"context"
	"errors"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// placedTicks is how many ticks an order stays in placed, counting the tick that moves
// it, so that a customer who has just ordered sees that first stage.
const placedTicks = 2

// notes are what the kitchen sometimes says when an order reaches a status. An empty
// note means none; which note an order gets is a function of its id, so runs repeat.
var notes = map[order.Status][]string{
	order.Preparing:      {"Extra basil today", "", "Dough stretched by hand, just for you", ""},
	order.Baking:         {"Into the wood-fired oven", "", ""},
	order.Ready:          {"", "Boxed and piping hot", ""},
	order.OutForDelivery: {"Our driver is on the way", "", "Riding the scooter over to you"},
	order.Delivered:      {"", "Buon appetito!"},
}

// Mover is what the kitchen needs of the order store.
type Mover interface {
	// FindOpenOrders returns the orders not yet delivered or cancelled.
	FindOpenOrders(ctx context.Context) ([]*order.Order, error)
	// TransitionOrder moves an order; a stale expected version gives an error matching
	// order.ErrStale.
	TransitionOrder(ctx context.Context, id string, t order.Transition) (
		*order.Order, *order.Event, error)
}

// Kitchen moves open orders one step along their happy path on every tick. It never
// cancels an order, and it leaves alone an order that someone else moved first.
type Kitchen struct {
	store    Mover
	interval time.Duration
	logger   *slog.Logger

	// waited counts the ticks each placed order has been seen waiting. Only the
	// goroutine running Step touches it.
	waited map[string]int
}

// New returns a kitchen that works on the orders of store every interval.
func New(store Mover, interval time.Duration, logger *slog.Logger) *Kitchen {
	if logger == nil {
		logger = slog.Default()
	}
	return &Kitchen{
		store:    store,
		interval: interval,
		logger:   logger,
		waited:   make(map[string]int),
	}
}

// Run calls Step every interval until ctx is done, then returns nil. A failed step is
// logged and the next tick tries again.
func (k *Kitchen) Run(ctx context.Context) error {
	k.logger.Info("Demo kitchen started", slog.Duration("interval", k.interval))
	ticker := time.NewTicker(k.interval)
	defer ticker.Stop()

	for {
		select {
		case <-ctx.Done():
			k.logger.Info("Demo kitchen stopped")
			return nil
		case <-ticker.C:
			if err := k.Step(ctx); err != nil && ctx.Err() == nil {
				k.logger.Warn("Demo kitchen step failed", slog.Any("error", err))
			}
		}
	}
}

// Step moves every open order at most one status along. An order in placed first waits
// placedTicks steps. Orders that moved in the meantime (a stale version, or a move no
// longer allowed) are skipped; the first other error ends the step.
func (k *Kitchen) Step(ctx context.Context) error {
	orders, err := k.store.FindOpenOrders(ctx)
	if err != nil {
		return err
	}

	open := make(map[string]bool, len(orders))
	for _, o := range orders {
		open[o.ID] = true
		if o.Status == order.Placed {
			k.waited[o.ID]++
			if k.waited[o.ID] < placedTicks {
				continue
			}
		}
		if err := k.advance(ctx, o); err != nil {
			return err
		}
	}

	for id := range k.waited {
		if !open[id] {
			delete(k.waited, id)
		}
	}
	return nil
}

// advance moves o to the next status of its happy path.
func (k *Kitchen) advance(ctx context.Context, o *order.Order) error {
	next, ok := happyNext(o)
	if !ok {
		return nil
	}

	t := order.Transition{Status: next, Note: noteFor(o.ID, next), ExpectedVersion: o.Version}
	_, _, err := k.store.TransitionOrder(ctx, o.ID, t)
	var illegal *order.IllegalTransitionError
	switch {
	case err == nil:
		delete(k.waited, o.ID)
		k.logger.Debug("Demo kitchen moved an order",
			slog.String("order_id", o.ID),
			slog.String("status", string(next)))
		return nil
	case errors.Is(err, order.ErrStale), errors.As(err, &illegal):
		// Staff (or another kitchen) got there first: look again next tick.
		return nil
	}
	return err
}

// happyNext returns the status after o's on the way to delivered.
func happyNext(o *order.Order) (order.Status, bool) {
	for _, s := range o.Next() {
		if s != order.Cancelled {
			return s, true
		}
	}
	return "", false
}

// noteFor picks the note an order gets on reaching status.
func noteFor(orderID string, status order.Status) string {
	choices := notes[status]
	if len(choices) == 0 {
		return ""
	}
	h := fnv.New32a()
	h.Write([]byte(orderID))
	h.Write([]byte(status))
	return choices[h.Sum32()%uint32(len(choices))]
}
