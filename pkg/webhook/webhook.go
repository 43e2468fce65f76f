// Package webhook delivers order status events to subscribed URLs: it makes the
// subscriptions' signing secrets, signs deliveries per the Standard Webhooks scheme,
// checks target URLs against loopback and private addresses, and runs the Dispatcher
// that sends the deliveries PostgreSQL queued, retrying them on a fixed schedule.
//
// Deliveries are queued by the database itself (a trigger on order_events, in the
// transaction that stores the event), so this package only ever reads the queue.
package webhook

import (
	"context"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// Subscription states, as the API shows them.
const (
	StateActive = "active"
	StateEnded  = "ended"
)

// Why a subscription ended.
const (
	// EndedGone: the target answered 410 Gone.
	EndedGone = "gone"
)

// Subscription is a URL subscribed to the status events of one order, or of every
// order when OrderID is nil.
type Subscription struct {
	ID        string  `db:"id"`
	TargetURL string  `db:"target_url"`
	OrderID   *string `db:"order_id"`
	// Secret signs the deliveries: "whsec_" and the base64 of 32 random bytes. Listings
	// leave it empty; it is shown only when the subscription is created.
	Secret    string    `db:"secret"`
	CreatedAt time.Time `db:"created_at"`
	// EndedAt is set once deliveries stopped for good, with the reason in EndedReason.
	EndedAt     *time.Time `db:"ended_at"`
	EndedReason *string    `db:"ended_reason"`
}

// State returns StateActive or StateEnded.
func (s *Subscription) State() string {
	if s.EndedAt != nil {
		return StateEnded
	}
	return StateActive
}

// Delivery is one event on its way to one subscription, as claimed by a Dispatcher.
type Delivery struct {
	// ID is the delivery's webhook-id header, the same on every attempt.
	ID        string
	WebhookID string
	TargetURL string
	Secret    string
	// Attempts counts the attempts made before this one.
	Attempts int
	// FirstAttemptAt is when the first attempt was made; nil before it.
	FirstAttemptAt *time.Time
	// Event is the order event delivered.
	Event order.Event
}

// Outcome is how an attempt ended, as recorded and as counted in metrics.
type Outcome string

// The outcomes of an attempt.
const (
	// OutcomeSuccess: the target answered 2xx; the delivery succeeded.
	OutcomeSuccess Outcome = "success"
	// OutcomeFailure: no 2xx answer; the delivery is tried again at NextAttemptAt.
	OutcomeFailure Outcome = "failure"
	// OutcomeGone: the target answered 410 Gone; the delivery failed and the
	// subscription ended, failing its other pending deliveries too.
	OutcomeGone Outcome = "gone"
	// OutcomeGivenUp: no 2xx answer and the schedule is used up; the delivery failed.
	OutcomeGivenUp Outcome = "given_up"
)

// Attempt is the result of one attempt at a delivery.
type Attempt struct {
	DeliveryID string
	WebhookID  string
	Outcome    Outcome
	// StartedAt and FinishedAt bracket the attempt, by the Dispatcher's clock.
	StartedAt  time.Time
	FinishedAt time.Time
	// StatusCode is the target's answer; 0 when there was none.
	StatusCode int
	// Error says why the attempt failed, for people; empty on success. It never holds
	// the secret or the target URL.
	Error string
	// NextAttemptAt is when to try again, for OutcomeFailure only.
	NextAttemptAt time.Time
}

// Store is the delivery queue a Dispatcher works from. Errors wrap order.ErrUnavailable
// when the database cannot be reached.
type Store interface {
	// ClaimDeliveries leases up to limit pending deliveries that are due at now, until
	// leaseUntil, and returns them. A delivery is due when its next attempt time has
	// come, it is not leased (or its lease ran out), and no older delivery of the same
	// subscription and order is still pending. A leased delivery is claimed by nobody
	// else, on any replica, until it is recorded or its lease runs out.
	ClaimDeliveries(
		ctx context.Context, now time.Time, limit int, leaseUntil time.Time,
	) ([]*Delivery, error)
	// RecordAttempt stores the result of an attempt and releases the lease. A delivery
	// no longer pending (its subscription was deleted or ended meanwhile) is left alone.
	RecordAttempt(ctx context.Context, a *Attempt) error
}

// Observer is told about each attempt, for metrics.
type Observer interface {
	// WebhookAttempt counts one attempt by outcome: success, failure, gone or given_up.
	WebhookAttempt(outcome string)
}
