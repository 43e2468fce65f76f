package order

import "context"

// Store keeps orders and their events. Implementations return ErrNotFound for an
// unknown order, ErrUnavailable (wrapped) when the database cannot be reached, and the
// errors of CheckTransition for a refused transition.
type Store interface {
	// Menu returns the menu.
	Menu(ctx context.Context) (*Menu, error)
	// CreateOrder prices the request against the stored menu and stores the order with
	// its first event (placed, version 1) in one transaction. An invalid request gives a
	// *FieldError and stores nothing.
	CreateOrder(ctx context.Context, n *NewOrder) (*Order, *Event, error)
	// FindOrderByID returns one order with its items.
	FindOrderByID(ctx context.Context, id string) (*Order, error)
	// FindOrders returns orders matching the filter, newest first.
	FindOrders(ctx context.Context, f Filter) ([]*Order, error)
	// TransitionOrder checks and applies a transition: it locks the order, checks the
	// expected version (*StaleError) and the move (*IllegalTransitionError), updates the
	// order, stores the event and notifies listeners, all in one transaction.
	TransitionOrder(ctx context.Context, id string, t Transition) (*Order, *Event, error)
	// FindEvents returns the order's events with a version above after, oldest first.
	FindEvents(ctx context.Context, orderID string, after int64) ([]Event, error)
}
