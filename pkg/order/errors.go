package order

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test for them with errors.Is; the HTTP layer maps each to a status.
var (
	// ErrNotFound: the order (or other record) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrStale: the caller's expected version is not the current one.
	ErrStale = errors.New("stale version")
	// ErrUnavailable: a dependency, such as the database, cannot be reached.
	ErrUnavailable = errors.New("service unavailable")
)

// FieldError says which field of a request holds an invalid value.
type FieldError struct {
	Field   string
	Message string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %s", e.Field, e.Message)
}

// IllegalTransitionError says that an order cannot move to the requested status, and
// where it can move instead.
type IllegalTransitionError struct {
	From    Status
	To      Status
	Allowed []Status
}

// Error implements error.
func (e *IllegalTransitionError) Error() string {
	if e.From.Terminal() {
		return fmt.Sprintf("order is %s and cannot change any more", e.From)
	}
	return fmt.Sprintf("cannot move an order from %s to %s", e.From, e.To)
}

// StaleError says that the order has moved on since the version the caller expected.
type StaleError struct {
	Expected int64
	Current  int64
}

// Error implements error.
func (e *StaleError) Error() string {
	return fmt.Sprintf("expected version %d but the order is at version %d", e.Expected, e.Current)
}

// Is makes errors.Is(err, ErrStale) true for a *StaleError.
func (e *StaleError) Is(target error) bool {
	return target == ErrStale
}
