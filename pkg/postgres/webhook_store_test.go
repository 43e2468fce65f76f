package postgres

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/webhook"
)

// lease is how long test claims hold deliveries.
const lease = time.Minute

// mustSubscribe subscribes a target to one order's events, or to all when orderID is
// empty.
func mustSubscribe(tb testing.TB, ws *WebhookStore, orderID string) *webhook.Subscription {
	tb.Helper()
	sub := &webhook.Subscription{TargetURL: "https://example.com/hook", Secret: webhook.NewSecret()}
	if orderID != "" {
		sub.OrderID = &orderID
	}
	if err := ws.CreateWebhook(context.Background(), sub); err != nil {
		tb.Fatalf("CreateWebhook: %v", err)
	}
	return sub
}

// queued is one row of webhook_deliveries, as the tests look at it.
type queued struct {
	WebhookID string `db:"webhook_id"`
	OrderID   string `db:"order_id"`
	Version   int64  `db:"version"`
	Status    string `db:"status"`
}

// queuedDeliveries returns every delivery, by subscription, order and version.
func queuedDeliveries(tb testing.TB, db *DB) []queued {
	tb.Helper()
	var rows []queued
	err := db.Select(&rows, `
		SELECT webhook_id, order_id, version, status FROM webhook_deliveries
		ORDER BY webhook_id, order_id, version`)
	if err != nil {
		tb.Fatalf("select deliveries: %v", err)
	}
	return rows
}

// sortQueued sorts rows as queuedDeliveries returns them.
func sortQueued(rows []queued) {
	sort.Slice(rows, func(i, j int) bool {
		a, b := rows[i], rows[j]
		if a.WebhookID != b.WebhookID {
			return a.WebhookID < b.WebhookID
		}
		if a.OrderID != b.OrderID {
			return a.OrderID < b.OrderID
		}
		return a.Version < b.Version
	})
}

// claim claims deliveries at now and fails the test on an error.
func claim(tb testing.TB, ws *WebhookStore, now time.Time, limit int) []*webhook.Delivery {
	tb.Helper()
	batch, err := ws.ClaimDeliveries(context.Background(), now, limit, now.Add(lease))
	if err != nil {
		tb.Fatalf("ClaimDeliveries: %v", err)
	}
	return batch
}

// record stores an attempt and fails the test on an error.
func record(tb testing.TB, ws *WebhookStore, d *webhook.Delivery, a webhook.Attempt) {
	tb.Helper()
	a.DeliveryID, a.WebhookID = d.ID, d.WebhookID
	if a.StartedAt.IsZero() {
		a.StartedAt = time.Now()
	}
	if a.FinishedAt.IsZero() {
		a.FinishedAt = a.StartedAt
	}
	if err := ws.RecordAttempt(context.Background(), &a); err != nil {
		tb.Fatalf("RecordAttempt: %v", err)
	}
}

// versions lists the order and version of each delivery.
func versions(batch []*webhook.Delivery) []string {
	out := make([]string, len(batch))
	for i, d := range batch {
		out[i] = fmt.Sprintf("%s/%d", d.Event.OrderID, d.Event.Version)
	}
	sort.Strings(out)
	return out
}

func TestWebhookTriggerQueuesMatchingSubscriptions(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)

	a := mustCreate(t, s, order.Pickup)
	b := mustCreate(t, s, order.Delivery)
	all := mustSubscribe(t, ws, "")
	onlyA := mustSubscribe(t, ws, a.ID)

	mustMove(t, s, a.ID, order.Preparing)
	mustMove(t, s, b.ID, order.Preparing)
	c := mustCreate(t, s, order.Pickup)

	want := []queued{
		{all.ID, a.ID, 2, "pending"},
		{all.ID, b.ID, 2, "pending"},
		{all.ID, c.ID, 1, "pending"},
		{onlyA.ID, a.ID, 2, "pending"},
	}
	sortQueued(want)
	if diff := cmp.Diff(want, queuedDeliveries(t, db)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestCreateWebhook(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	o := mustCreate(t, s, order.Pickup)

	sub := mustSubscribe(t, ws, o.ID)
	if !validID(sub.ID) || sub.CreatedAt.IsZero() || *sub.OrderID != o.ID {
		t.Errorf("created %+v", sub)
	}
	subs, err := ws.FindWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != sub.ID || subs[0].Secret != "" ||
		subs[0].State() != webhook.StateActive || !subs[0].CreatedAt.Equal(sub.CreatedAt) {
		t.Errorf("FindWebhooks = %+v, want the subscription without its secret", subs)
	}

	for _, id := range []string{"0b7e3f5c-4d1a-4c8e-9f2b-6a5d4c3b2a10", "nope", ""} {
		sub := &webhook.Subscription{TargetURL: "https://example.com/", OrderID: &id,
			Secret: webhook.NewSecret()}
		err := ws.CreateWebhook(t.Context(), sub)
		var field *order.FieldError
		if !errors.As(err, &field) || field.Field != "order_id" {
			t.Errorf("order_id %q: err = %v, want a field error for order_id", id, err)
		}
	}
}

func TestDeleteWebhook(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	o := mustCreate(t, s, order.Pickup)
	sub := mustSubscribe(t, ws, "")
	keep := mustSubscribe(t, ws, o.ID)
	mustMove(t, s, o.ID, order.Preparing)

	if err := ws.DeleteWebhook(t.Context(), sub.ID); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	for _, id := range []string{sub.ID, "nope", "0b7e3f5c-4d1a-4c8e-9f2b-6a5d4c3b2a10"} {
		if err := ws.DeleteWebhook(t.Context(), id); !errors.Is(err, order.ErrNotFound) {
			t.Errorf("DeleteWebhook(%q) = %v, want ErrNotFound", id, err)
		}
	}

	subs, err := ws.FindWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(subs) != 1 || subs[0].ID != keep.ID {
		t.Errorf("FindWebhooks = %+v, want only %s", subs, keep.ID)
	}
	want := []queued{{keep.ID, o.ID, 2, "pending"}}
	if diff := cmp.Diff(want, queuedDeliveries(t, db)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}
}

func TestClaimDeliveriesKeepsVersionOrder(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	o := mustCreate(t, s, order.Pickup)
	other := mustCreate(t, s, order.Pickup)
	sub := mustSubscribe(t, ws, "")
	mustMove(t, s, o.ID, order.Preparing)
	mustMove(t, s, o.ID, order.Baking)
	mustMove(t, s, other.ID, order.Preparing)
	now := time.Now()

	// Each order's oldest pending delivery only; other orders go side by side.
	batch := claim(t, ws, now, 10)
	want := []string{o.ID + "/2", other.ID + "/2"}
	sort.Strings(want)
	if diff := cmp.Diff(want, versions(batch)); diff != "" {
		t.Fatalf("first claim (-want +got):\n%s", diff)
	}
	if got := claim(t, ws, now, 10); len(got) != 0 {
		t.Fatalf("second claim got %v while the first ones are leased", versions(got))
	}
	var v2 *webhook.Delivery
	for _, d := range batch {
		if d.Event.OrderID == o.ID {
			v2 = d
		}
	}
	if v2.TargetURL != sub.TargetURL || v2.Secret != sub.Secret || v2.Attempts != 0 ||
		v2.Event.Status != order.Preparing || *v2.Event.PreviousStatus != order.Placed {
		t.Errorf("claimed %+v", v2)
	}

	// v2 fails: v3 stays behind it, even once v3 would be due.
	retryAt := now.Add(5 * time.Second)
	record(t, ws, v2, webhook.Attempt{Outcome: webhook.OutcomeFailure, StartedAt: now,
		StatusCode: 500, Error: "target answered 500", NextAttemptAt: retryAt})
	if got := claim(t, ws, now.Add(time.Second), 10); len(got) != 0 {
		t.Fatalf("claim before the retry got %v", versions(got))
	}
	retry := claim(t, ws, retryAt, 10)
	if diff := cmp.Diff([]string{o.ID + "/2"}, versions(retry)); diff != "" {
		t.Fatalf("claim at the retry (-want +got):\n%s", diff)
	}
	if retry[0].ID != v2.ID || retry[0].Attempts != 1 || retry[0].FirstAttemptAt == nil ||
		retry[0].FirstAttemptAt.Sub(now).Abs() > time.Microsecond {
		t.Errorf("retry is %+v, want the same delivery after one attempt at %v", retry[0], now)
	}

	record(t, ws, retry[0], webhook.Attempt{Outcome: webhook.OutcomeSuccess, StatusCode: 204})
	next := claim(t, ws, retryAt, 10)
	if diff := cmp.Diff([]string{o.ID + "/3"}, versions(next)); diff != "" {
		t.Fatalf("claim after v2 succeeded (-want +got):\n%s", diff)
	}

	var row struct {
		Attempts    int        `db:"attempts"`
		Status      string     `db:"status"`
		Code        *int       `db:"last_status_code"`
		LastError   *string    `db:"last_error"`
		DeliveredAt *time.Time `db:"delivered_at"`
	}
	err := db.Get(&row, `SELECT attempts, status, last_status_code, last_error, delivered_at
		FROM webhook_deliveries WHERE id = $1`, v2.ID)
	if err != nil {
		t.Fatal(err)
	}
	if row.Attempts != 2 || row.Status != "succeeded" || row.Code == nil || *row.Code != 204 ||
		row.LastError != nil || row.DeliveredAt == nil {
		t.Errorf("v2 after success: %+v", row)
	}
}

func TestClaimDeliveriesLease(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	mustSubscribe(t, ws, "")
	mustCreate(t, s, order.Pickup)
	now := time.Now()

	first := claim(t, ws, now, 1)
	if len(first) != 1 {
		t.Fatalf("claimed %d, want 1", len(first))
	}
	if got := claim(t, ws, now.Add(lease-time.Second), 1); len(got) != 0 {
		t.Fatalf("claimed %v while leased", versions(got))
	}
	// A dispatcher that died leaves its lease to run out.
	again := claim(t, ws, now.Add(lease), 1)
	if len(again) != 1 || again[0].ID != first[0].ID || again[0].Attempts != 0 {
		t.Fatalf("claim after the lease = %+v, want %s again", again, first[0].ID)
	}
}

func TestClaimDeliveriesConcurrently(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	mustSubscribe(t, ws, "")
	const orders = 24
	for range orders {
		mustCreate(t, s, order.Pickup)
	}
	now := time.Now()

	var (
		mu      sync.Mutex
		claimed = map[string]int{}
		wg      sync.WaitGroup
	)
	for range 4 {
		wg.Go(func() {
			for range orders {
				batch, err := ws.ClaimDeliveries(context.Background(), now, 3, now.Add(lease))
				if err != nil {
					t.Errorf("ClaimDeliveries: %v", err)
					return
				}
				if len(batch) == 0 {
					return
				}
				mu.Lock()
				for _, d := range batch {
					claimed[d.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()

	if len(claimed) != orders {
		t.Errorf("claimed %d deliveries, want %d", len(claimed), orders)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("delivery %s claimed %d times", id, n)
		}
	}
}

func TestRecordAttemptGoneEndsSubscription(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	a := mustCreate(t, s, order.Pickup)
	b := mustCreate(t, s, order.Pickup)
	sub := mustSubscribe(t, ws, "")
	other := mustSubscribe(t, ws, a.ID)
	mustMove(t, s, a.ID, order.Preparing)
	mustMove(t, s, b.ID, order.Preparing)
	mustMove(t, s, a.ID, order.Baking)

	var gone *webhook.Delivery
	for _, d := range claim(t, ws, time.Now(), 10) {
		if d.WebhookID == sub.ID && d.Event.OrderID == a.ID {
			gone = d
		}
	}
	if gone == nil {
		t.Fatal("the global subscription's first delivery was not claimed")
	}
	record(t, ws, gone, webhook.Attempt{Outcome: webhook.OutcomeGone, StatusCode: 410,
		Error: "target answered 410 Gone"})
	mustMove(t, s, b.ID, order.Baking)

	want := []queued{
		{sub.ID, a.ID, 2, "failed"},
		{sub.ID, a.ID, 3, "failed"},
		{sub.ID, b.ID, 2, "failed"},
		{other.ID, a.ID, 2, "pending"},
		{other.ID, a.ID, 3, "pending"},
	}
	sortQueued(want)
	if diff := cmp.Diff(want, queuedDeliveries(t, db)); diff != "" {
		t.Errorf("deliveries (-want +got):\n%s", diff)
	}

	subs, err := ws.FindWebhooks(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, got := range subs {
		wantState := webhook.StateActive
		if got.ID == sub.ID {
			wantState = webhook.StateEnded
			if got.EndedReason == nil || *got.EndedReason != webhook.EndedGone {
				t.Errorf("ended reason = %v, want %q", got.EndedReason, webhook.EndedGone)
			}
		}
		if got.State() != wantState {
			t.Errorf("subscription %s is %s, want %s", got.ID, got.State(), wantState)
		}
	}
}

// waitForLockWait polls until some session waits for a lock, or fails the test.
func waitForLockWait(tb testing.TB, db *DB) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		var waiting int
		err := db.Get(&waiting, `SELECT count(*) FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND datname = current_database()`)
		if err != nil {
			tb.Fatalf("read pg_stat_activity: %v", err)
		}
		if waiting > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatal("nobody waited for a lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCreateWebhookWaitsForEventWriters(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	o := mustCreate(t, s, order.Pickup)

	// An event transaction under way when the subscription is made...
	tx, err := db.BeginTxx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	_, err = tx.Exec(`INSERT INTO order_events (order_id, version, status, previous_status)
		VALUES ($1, 2, 'preparing', 'placed')`, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		sub := &webhook.Subscription{TargetURL: "https://example.com/", Secret: webhook.NewSecret()}
		done <- ws.CreateWebhook(context.Background(), sub)
	}()

	// ...holds the subscription back until it commits, and so is not delivered.
	waitForLockWait(t, db)
	select {
	case err := <-done:
		t.Fatalf("CreateWebhook returned %v while an event transaction was open", err)
	default:
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("CreateWebhook: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("CreateWebhook did not return")
	}
	if got := queuedDeliveries(t, db); len(got) != 0 {
		t.Errorf("an event committed before the subscription was queued: %+v", got)
	}
}

func TestDeleteWebhookDuringTransition(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ws := NewWebhookStore(db)
	o := mustCreate(t, s, order.Pickup)
	sub := mustSubscribe(t, ws, o.ID)

	// A delete under way when an event is stored...
	tx, err := db.BeginTxx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM webhooks WHERE id = $1`, sub.ID); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.TransitionOrder(context.Background(), o.ID,
			order.Transition{Status: order.Preparing})
		done <- err
	}()

	// ...makes the transition wait, then skip the subscription rather than fail.
	waitForLockWait(t, db)
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("TransitionOrder: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("TransitionOrder did not return")
	}
	if got := queuedDeliveries(t, db); len(got) != 0 {
		t.Errorf("queued for a deleted subscription: %+v", got)
	}
}
