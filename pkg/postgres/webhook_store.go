package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/webhook"
)

// subscribeLockTimeout bounds how long creating a subscription waits for the event
// transactions under way, beyond which it gives up as unavailable.
const subscribeLockTimeout = "5s"

// WebhookStore keeps webhook subscriptions and the queue of their deliveries, which a
// trigger on order_events fills. It is safe for concurrent use.
type WebhookStore struct {
	db *DB
}

var _ webhook.Store = (*WebhookStore)(nil)

// NewWebhookStore returns a webhook store on db.
func NewWebhookStore(db *DB) *WebhookStore {
	return &WebhookStore{db: db}
}

// subscriptionColumns are the columns of webhooks that fill a webhook.Subscription,
// all but the secret.
const subscriptionColumns = `id, target_url, order_id, created_at, ended_at, ended_reason`

// CreateWebhook stores sub (its TargetURL, OrderID and Secret) and fills in its ID and
// CreatedAt. An order id that is malformed or names no order gives a *order.FieldError
// for order_id.
//
// Every event committed after the subscription is delivered to it, and none committed
// before: the subscription waits for the event transactions under way to end and holds
// new ones back until it commits, so that each event's trigger runs either wholly
// before the subscription exists or wholly after.
func (s *WebhookStore) CreateWebhook(ctx context.Context, sub *webhook.Subscription) error {
	if sub.OrderID != nil && !validID(*sub.OrderID) {
		return fmt.Errorf("create webhook: %w", noSuchOrder())
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("create webhook: begin: %w", mapError(err))
	}
	defer tx.Rollback()

	// The order first, so that a transition of it that holds its row is waited for
	// here, before the table lock it would itself wait for.
	if sub.OrderID != nil {
		var one int
		const lockOrder = `SELECT 1 FROM orders WHERE id = $1 FOR KEY SHARE`
		err := tx.GetContext(ctx, &one, lockOrder, *sub.OrderID)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("create webhook: %w", noSuchOrder())
		}
		if err != nil {
			return fmt.Errorf("create webhook: check order: %w", mapError(err))
		}
	}

	// SHARE conflicts with the ROW EXCLUSIVE lock that inserting an event takes.
	if _, err := tx.ExecContext(ctx,
		`SET LOCAL lock_timeout = '`+subscribeLockTimeout+`'`); err != nil {
		return fmt.Errorf("create webhook: %w", mapError(err))
	}
	if _, err := tx.ExecContext(ctx, `LOCK TABLE order_events IN SHARE MODE`); err != nil {
		return fmt.Errorf("create webhook: wait for event writers: %w", mapLockError(err))
	}

	const insert = `
		INSERT INTO webhooks (target_url, order_id, secret)
		VALUES ($1, $2, $3)
		RETURNING id, order_id, created_at`
	var row struct {
		ID        string    `db:"id"`
		OrderID   *string   `db:"order_id"`
		CreatedAt time.Time `db:"created_at"`
	}
	if err := tx.GetContext(ctx, &row, insert, sub.TargetURL, sub.OrderID, sub.Secret); err != nil {
		return fmt.Errorf("create webhook: %w", mapError(err))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("create webhook %s: commit: %w", row.ID, mapError(err))
	}
	sub.ID, sub.OrderID, sub.CreatedAt = row.ID, row.OrderID, row.CreatedAt.UTC()
	return nil
}

func noSuchOrder() error {
	return &order.FieldError{Field: "order_id", Message: "no such order"}
}

// mapLockError maps a lock timeout to order.ErrUnavailable, and the rest as mapError.
func mapLockError(err error) error {
	if pq.As(err, pqerror.LockNotAvailable) != nil {
		return fmt.Errorf("%w: %w", order.ErrUnavailable, err)
	}
	return mapError(err)
}

// FindWebhooks returns every subscription, oldest first, without secrets.
func (s *WebhookStore) FindWebhooks(ctx context.Context) ([]*webhook.Subscription, error) {
	const q = `SELECT ` + subscriptionColumns + ` FROM webhooks ORDER BY created_at, id`
	subs := []*webhook.Subscription{}
	if err := s.db.SelectContext(ctx, &subs, q); err != nil {
		return nil, fmt.Errorf("find webhooks: %w", mapError(err))
	}
	for _, sub := range subs {
		sub.CreatedAt = sub.CreatedAt.UTC()
		if sub.EndedAt != nil {
			t := sub.EndedAt.UTC()
			sub.EndedAt = &t
		}
	}
	return subs, nil
}

// DeleteWebhook deletes a subscription with its deliveries, sent or not. An unknown or
// malformed id gives order.ErrNotFound.
func (s *WebhookStore) DeleteWebhook(ctx context.Context, id string) error {
	if !validID(id) {
		return fmt.Errorf("delete webhook %q: %w", id, order.ErrNotFound)
	}
	res, err := s.db.ExecContext(ctx, `DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, mapError(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("delete webhook %s: %w", id, mapError(err))
	}
	if n == 0 {
		return fmt.Errorf("delete webhook %s: %w", id, order.ErrNotFound)
	}
	return nil
}

// deliveryRow is a claimed delivery with its subscription and event.
type deliveryRow struct {
	ID             string        `db:"id"`
	WebhookID      string        `db:"webhook_id"`
	TargetURL      string        `db:"target_url"`
	Secret         string        `db:"secret"`
	Attempts       int           `db:"attempts"`
	FirstAttemptAt *time.Time    `db:"first_attempt_at"`
	OrderID        string        `db:"order_id"`
	Version        int64         `db:"version"`
	Status         order.Status  `db:"status"`
	PreviousStatus *order.Status `db:"previous_status"`
	Note           string        `db:"note"`
	At             time.Time     `db:"at"`
}

// ClaimDeliveries leases up to limit due deliveries until leaseUntil, in one short
// transaction, and returns them with their subscription and event. Due means pending,
// with its next attempt at or before now, not leased past now, and with no older
// delivery of the same subscription and order still pending, so that each order's
// events reach a subscription in version order. SKIP LOCKED lets dispatchers claim side
// by side; the lease keeps a claimed delivery from all of them until it is recorded.
func (s *WebhookStore) ClaimDeliveries(
	ctx context.Context, now time.Time, limit int, leaseUntil time.Time,
) ([]*webhook.Delivery, error) {
	const q = `
		WITH due AS (
			SELECT d.id
			FROM webhook_deliveries d
			WHERE d.status = 'pending'
				AND d.next_attempt_at <= $1
				AND (d.locked_until IS NULL OR d.locked_until <= $1)
				AND NOT EXISTS (
					SELECT 1 FROM webhook_deliveries p
					WHERE p.webhook_id = d.webhook_id AND p.order_id = d.order_id
						AND p.status = 'pending' AND p.version < d.version)
			ORDER BY d.next_attempt_at, d.id
			LIMIT $2
			FOR UPDATE OF d SKIP LOCKED
		)
		UPDATE webhook_deliveries d
		SET locked_until = $3
		FROM due, webhooks w, order_events e
		WHERE d.id = due.id AND w.id = d.webhook_id AND e.id = d.event_id
		RETURNING d.id, d.webhook_id, w.target_url, w.secret, d.attempts, d.first_attempt_at,
			e.order_id, e.version, e.status, e.previous_status, e.note, e.at`
	var rows []deliveryRow
	if err := s.db.SelectContext(ctx, &rows, q, now, limit, leaseUntil); err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", mapError(err))
	}

	batch := make([]*webhook.Delivery, len(rows))
	for i, r := range rows {
		batch[i] = &webhook.Delivery{
			ID:             r.ID,
			WebhookID:      r.WebhookID,
			TargetURL:      r.TargetURL,
			Secret:         r.Secret,
			Attempts:       r.Attempts,
			FirstAttemptAt: r.FirstAttemptAt,
			Event: order.Event{
				OrderID:        r.OrderID,
				Version:        r.Version,
				Status:         r.Status,
				PreviousStatus: r.PreviousStatus,
				Note:           r.Note,
				At:             r.At.UTC(),
			},
		}
	}
	return batch, nil
}

// RecordAttempt stores the result of an attempt and releases the delivery's lease. A
// 410 Gone also ends the subscription and fails its other pending deliveries, in the
// same transaction. A delivery that is no longer pending is left alone.
func (s *WebhookStore) RecordAttempt(ctx context.Context, a *webhook.Attempt) error {
	status := "pending"
	var next, deliveredAt *time.Time
	switch a.Outcome {
	case webhook.OutcomeSuccess:
		status, deliveredAt = "succeeded", &a.FinishedAt
	case webhook.OutcomeFailure:
		next = &a.NextAttemptAt
	case webhook.OutcomeGone, webhook.OutcomeGivenUp:
		status = "failed"
	default:
		return fmt.Errorf("record attempt at %s: unknown outcome %q", a.DeliveryID, a.Outcome)
	}
	var code *int
	if a.StatusCode != 0 {
		code = &a.StatusCode
	}
	var lastError *string
	if a.Error != "" {
		lastError = &a.Error
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record attempt at %s: begin: %w", a.DeliveryID, mapError(err))
	}
	defer tx.Rollback()

	const update = `
		UPDATE webhook_deliveries
		SET status = $2,
			attempts = attempts + 1,
			first_attempt_at = COALESCE(first_attempt_at, $3),
			last_attempt_at = $3,
			next_attempt_at = COALESCE($4, next_attempt_at),
			locked_until = NULL,
			last_status_code = $5,
			last_error = $6,
			delivered_at = $7
		WHERE id = $1 AND status = 'pending'`
	_, err = tx.ExecContext(ctx, update,
		a.DeliveryID, status, a.StartedAt, next, code, lastError, deliveredAt)
	if err != nil {
		return fmt.Errorf("record attempt at %s: %w", a.DeliveryID, mapError(err))
	}

	if a.Outcome == webhook.OutcomeGone {
		if err := endWebhook(ctx, tx, a.WebhookID, webhook.EndedGone, a.FinishedAt); err != nil {
			return fmt.Errorf("record attempt at %s: %w", a.DeliveryID, mapError(err))
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record attempt at %s: commit: %w", a.DeliveryID, mapError(err))
	}
	return nil
}

// endWebhook ends a subscription for reason and fails its pending deliveries.
func endWebhook(ctx context.Context, tx sqlxExecer, id, reason string, at time.Time) error {
	const end = `
		UPDATE webhooks SET ended_at = $2, ended_reason = $3
		WHERE id = $1 AND ended_at IS NULL`
	if _, err := tx.ExecContext(ctx, end, id, at, reason); err != nil {
		return fmt.Errorf("end webhook %s: %w", id, err)
	}
	// A separate statement, with a snapshot of its own, so that it also sees deliveries
	// that event transactions queued while the update above waited for them.
	const fail = `
		UPDATE webhook_deliveries
		SET status = 'failed', locked_until = NULL,
			last_error = 'the subscription ended (' || $2 || ') before this was delivered'
		WHERE webhook_id = $1 AND status = 'pending'`
	if _, err := tx.ExecContext(ctx, fail, id, reason); err != nil {
		return fmt.Errorf("fail deliveries of webhook %s: %w", id, err)
	}
	return nil
}

// sqlxExecer is what endWebhook needs of a transaction.
type sqlxExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}
