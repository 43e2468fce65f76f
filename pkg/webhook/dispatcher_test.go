package webhook_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/pgtest"
	"github.com/orderstream/orderstream/pkg/postgres"
	"github.com/orderstream/orderstream/pkg/webhook"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// waitTimeout bounds every wait for a delivery; generous for a loaded machine.
const waitTimeout = 30 * time.Second

var discard = slog.New(slog.DiscardHandler)

// env is a migrated database of the test's own with its stores.
type env struct {
	db       *postgres.DB
	orders   *postgres.Store
	webhooks *postgres.WebhookStore
}

func newEnv(tb testing.TB) *env {
	tb.Helper()
	url := pgtest.NewDatabase(tb)
	ctx := context.Background()
	db, err := postgres.Open(ctx, url, 20, 20)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := postgres.Migrate(ctx, db.DB.DB, discard); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return &env{db: db, orders: postgres.NewStore(db), webhooks: postgres.NewWebhookStore(db)}
}

// placeOrder places a pickup order.
func (e *env) placeOrder(tb testing.TB) *order.Order {
	tb.Helper()
	o, _, err := e.orders.CreateOrder(context.Background(), &order.NewOrder{
		CustomerName: "Grace Hopper",
		Phone:        "+1 202 555 0147",
		Fulfillment:  order.Pickup,
		Items:        []order.NewItem{{Pizza: "margherita", Size: "small", Quantity: 1}},
	})
	if err != nil {
		tb.Fatalf("CreateOrder: %v", err)
	}
	return o
}

// move applies a transition.
func (e *env) move(tb testing.TB, id string, to order.Status) *order.Event {
	tb.Helper()
	_, ev, err := e.orders.TransitionOrder(context.Background(), id, order.Transition{Status: to})
	if err != nil {
		tb.Fatalf("TransitionOrder(%s): %v", to, err)
	}
	return ev
}

// subscribe subscribes url to one order, or to every order when orderID is empty. It
// skips the target check, as the targets are local test servers.
func (e *env) subscribe(tb testing.TB, url, orderID string) *webhook.Subscription {
	tb.Helper()
	sub := &webhook.Subscription{TargetURL: url, Secret: webhook.NewSecret()}
	if orderID != "" {
		sub.OrderID = &orderID
	}
	if err := e.webhooks.CreateWebhook(context.Background(), sub); err != nil {
		tb.Fatalf("CreateWebhook: %v", err)
	}
	return sub
}

// deliveryRow is a delivery as stored.
type deliveryRow struct {
	ID             string     `db:"id"`
	Version        int64      `db:"version"`
	Status         string     `db:"status"`
	Attempts       int        `db:"attempts"`
	NextAttemptAt  time.Time  `db:"next_attempt_at"`
	FirstAttemptAt *time.Time `db:"first_attempt_at"`
	LastError      *string    `db:"last_error"`
	LastStatusCode *int       `db:"last_status_code"`
}

// deliveries returns the deliveries of a subscription, in version order.
func (e *env) deliveries(tb testing.TB, webhookID string) []deliveryRow {
	tb.Helper()
	var rows []deliveryRow
	err := e.db.Select(&rows, `
		SELECT id, version, status, attempts, next_attempt_at, first_attempt_at, last_error,
			last_status_code
		FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY order_id, version`, webhookID)
	if err != nil {
		tb.Fatalf("select deliveries: %v", err)
	}
	return rows
}

// clock runs at the pace of the real one from an offset that tests move forward, so
// deliveries the database queues are due at once and retries come when told.
type clock struct {
	offset atomic.Int64
}

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// hit is one request a target received.
type hit struct {
	Header http.Header
	Body   []byte
	Status int
}

// delivered decodes the body of a hit.
func (h hit) delivered(tb testing.TB) (typ, timestamp string, ev map[string]any) {
	tb.Helper()
	var p struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
	if err := json.Unmarshal(h.Body, &p); err != nil {
		tb.Fatalf("delivery body %s: %v", h.Body, err)
	}
	return p.Type, p.Timestamp, p.Data
}

// version returns the order version a hit delivered.
func (h hit) version(tb testing.TB) int64 {
	tb.Helper()
	_, _, ev := h.delivered(tb)
	v, _ := ev["version"].(float64)
	return int64(v)
}

// target is a webhook receiver that records what it gets.
type target struct {
	*httptest.Server
	mu   sync.Mutex
	hits []hit
}

// newTarget starts a receiver that answers the n-th request (from 0) with respond(n),
// or 204 when respond is nil.
func newTarget(tb testing.TB, respond func(n int, h hit) int) *target {
	tb.Helper()
	tg := &target{}
	tg.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h := hit{Header: r.Header.Clone(), Body: body, Status: http.StatusNoContent}
		tg.mu.Lock()
		if respond != nil {
			h.Status = respond(len(tg.hits), h)
		}
		tg.hits = append(tg.hits, h)
		tg.mu.Unlock()
		w.WriteHeader(h.Status)
	}))
	tb.Cleanup(tg.Close)
	return tg
}

// Hits returns what the target received so far.
func (tg *target) Hits() []hit {
	tg.mu.Lock()
	defer tg.mu.Unlock()
	return append([]hit(nil), tg.hits...)
}

// waitHits waits until the target received n requests and returns them.
func (tg *target) waitHits(tb testing.TB, n int) []hit {
	tb.Helper()
	waitFor(tb, fmt.Sprintf("%d requests at the target", n), func() bool {
		return len(tg.Hits()) >= n
	})
	return tg.Hits()
}

// waitFor polls cond until it holds, and fails the test when it does not in time.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// outcomes counts attempts by outcome.
type outcomes struct {
	mu     sync.Mutex
	counts map[string]int
}

func (o *outcomes) WebhookAttempt(outcome string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.counts == nil {
		o.counts = map[string]int{}
	}
	o.counts[outcome]++
}

func (o *outcomes) count(outcome string) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.counts[outcome]
}

// countingStore counts the claims made through it, so that a test can tell that a
// dispatcher looked at the queue.
type countingStore struct {
	webhook.Store
	claims atomic.Int64
}

func (s *countingStore) ClaimDeliveries(
	ctx context.Context, now time.Time, limit int, leaseUntil time.Time,
) ([]*webhook.Delivery, error) {
	defer s.claims.Add(1)
	return s.Store.ClaimDeliveries(ctx, now, limit, leaseUntil)
}

// waitClaims waits until the dispatcher has claimed twice more, so that whatever was
// due when waitClaims was called has been claimed.
func (s *countingStore) waitClaims(tb testing.TB, d *webhook.Dispatcher) {
	tb.Helper()
	start := s.claims.Load()
	waitFor(tb, "two claims", func() bool {
		d.Poke()
		return s.claims.Load() >= start+2
	})
}

// run starts a dispatcher until the test ends. The test targets listen on 127.0.0.1,
// so most tests allow private targets.
func run(tb testing.TB, store webhook.Store, opts webhook.Options,
	observer webhook.Observer) *webhook.Dispatcher {
	tb.Helper()
	if opts.PollInterval == 0 {
		opts.PollInterval = 50 * time.Millisecond
	}
	d := webhook.NewDispatcher(store, opts, discard, observer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run: %v", err)
			}
		case <-time.After(waitTimeout):
			tb.Error("Run did not return after its context was cancelled")
		}
	})
	return d
}

func TestDeliverySignedAndMatched(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a := e.placeOrder(t)
	one, all := newTarget(t, nil), newTarget(t, nil)
	subOne := e.subscribe(t, one.URL+"/one?token=x", a.ID)
	subAll := e.subscribe(t, all.URL+"/all", "")

	c := &clock{}
	run(t, e.webhooks, webhook.Options{Now: c.Now, AllowPrivateTargets: true}, nil)
	ev := e.move(t, a.ID, order.Preparing)
	b := e.placeOrder(t)

	hits := one.waitHits(t, 1)
	allHits := all.waitHits(t, 2)
	waitFor(t, "every delivery to succeed", func() bool {
		for _, sub := range []string{subOne.ID, subAll.ID} {
			for _, d := range e.deliveries(t, sub) {
				if d.Status != "succeeded" {
					return false
				}
			}
		}
		return true
	})
	if n := len(one.Hits()); n != 1 {
		t.Errorf("the one-order target got %d requests, want 1", n)
	}
	if n := len(all.Hits()); n != 2 {
		t.Errorf("the all-orders target got %d requests, want 2", n)
	}

	h := hits[0]
	for name, want := range map[string]string{
		"Content-Type": "application/json",
		"User-Agent":   "orderstream-webhooks",
		"webhook-id":   e.deliveries(t, subOne.ID)[0].ID,
	} {
		if got := h.Header.Get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
	if !strings.HasPrefix(h.Header.Get("webhook-id"), "msg_") {
		t.Errorf("webhook-id %q lacks the msg_ prefix", h.Header.Get("webhook-id"))
	}
	ts, err := strconv.ParseInt(h.Header.Get("webhook-timestamp"), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("webhook-timestamp %q is not the time of the attempt",
			h.Header.Get("webhook-timestamp"))
	}
	if !verifySignature(subOne.Secret, h.Header, h.Body) {
		t.Errorf("signature %q does not verify", h.Header.Get("webhook-signature"))
	}
	if verifySignature(subAll.Secret, h.Header, h.Body) {
		t.Error("signature verifies with another subscription's secret")
	}

	// The data is the event exactly as on the SSE stream.
	sse, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`{"type":"order.status","timestamp":%q,"data":%s}`,
		order.FormatTime(ev.At), sse)
	if string(h.Body) != want {
		t.Errorf("body\n got %s\nwant %s", h.Body, want)
	}

	got := map[string]int64{}
	for _, h := range allHits {
		typ, _, data := h.delivered(t)
		if typ != "order.status" || !verifySignature(subAll.Secret, h.Header, h.Body) {
			t.Errorf("all-orders delivery %s: type %q or signature wrong", h.Body, typ)
		}
		got[data["order_id"].(string)] = h.version(t)
	}
	// Order a's first event came before the subscription and is not delivered.
	if got[a.ID] != 2 || got[b.ID] != 1 {
		t.Errorf("all-orders target got versions %v, want %s:2 and %s:1", got, a.ID, b.ID)
	}
}

func TestDeliveryRetriedOnSchedule(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.placeOrder(t)
	tg := newTarget(t, func(n int, _ hit) int {
		if n == 0 {
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	sub := e.subscribe(t, tg.URL, o.ID)
	c := &clock{}
	obs := &outcomes{}
	d := run(t, e.webhooks, webhook.Options{Now: c.Now, AllowPrivateTargets: true}, obs)

	e.move(t, o.ID, order.Preparing)
	first := tg.waitHits(t, 1)[0]
	waitFor(t, "the failure to be recorded", func() bool {
		return e.deliveries(t, sub.ID)[0].Attempts == 1
	})
	row := e.deliveries(t, sub.ID)[0]
	if row.Status != "pending" || row.LastStatusCode == nil || *row.LastStatusCode != 500 ||
		row.LastError == nil || !strings.Contains(*row.LastError, "500") {
		t.Errorf("after the failure: %+v", row)
	}
	if got := row.NextAttemptAt.Sub(*row.FirstAttemptAt); got != 5*time.Second {
		t.Errorf("next attempt %s after the first, want 5s", got)
	}

	c.Advance(5 * time.Second)
	d.Poke()
	second := tg.waitHits(t, 2)[1]
	waitFor(t, "the success to be recorded", func() bool {
		return e.deliveries(t, sub.ID)[0].Status == "succeeded"
	})

	if first.Header.Get("webhook-id") != second.Header.Get("webhook-id") {
		t.Errorf("webhook-id changed from %q to %q", first.Header.Get("webhook-id"),
			second.Header.Get("webhook-id"))
	}
	t1, _ := strconv.ParseInt(first.Header.Get("webhook-timestamp"), 10, 64)
	t2, _ := strconv.ParseInt(second.Header.Get("webhook-timestamp"), 10, 64)
	if t2-t1 < 5 {
		t.Errorf("timestamps %d then %d, want the retry's at least 5 s later", t1, t2)
	}
	if string(first.Body) != string(second.Body) {
		t.Errorf("body changed from %s to %s", first.Body, second.Body)
	}
	if !verifySignature(sub.Secret, second.Header, second.Body) {
		t.Error("the retry's signature does not verify")
	}
	if obs.count("failure") != 1 || obs.count("success") != 1 {
		t.Errorf("outcomes %v, want one failure and one success", obs.counts)
	}
}

func TestDeliveryGivenUpAfterADay(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.placeOrder(t)
	tg := newTarget(t, func(int, hit) int { return http.StatusServiceUnavailable })
	sub := e.subscribe(t, tg.URL, o.ID)
	c := &clock{}
	obs := &outcomes{}
	d := run(t, e.webhooks, webhook.Options{Now: c.Now, AllowPrivateTargets: true}, obs)

	e.move(t, o.ID, order.Cancelled)
	for i, offset := range webhook.DefaultSchedule {
		tg.waitHits(t, i+1)
		waitFor(t, fmt.Sprintf("attempt %d to be recorded", i+1), func() bool {
			return e.deliveries(t, sub.ID)[0].Attempts == i+1
		})
		row := e.deliveries(t, sub.ID)[0]
		if got := row.NextAttemptAt.Sub(*row.FirstAttemptAt); got != offset {
			t.Fatalf("after attempt %d: next attempt +%s, want +%s", i+1, got, offset)
		}
		// Move the clock to the next slot, from the first attempt.
		c.Advance(row.NextAttemptAt.Sub(c.Now()) + time.Millisecond)
		d.Poke()
	}

	attempts := len(webhook.DefaultSchedule) + 1
	tg.waitHits(t, attempts)
	waitFor(t, "the delivery to fail", func() bool {
		return e.deliveries(t, sub.ID)[0].Status == "failed"
	})
	if got := e.deliveries(t, sub.ID)[0].Attempts; got != attempts {
		t.Errorf("%d attempts, want %d", got, attempts)
	}
	if obs.count("given_up") != 1 || obs.count("failure") != attempts-1 {
		t.Errorf("outcomes %v, want %d failures and one given_up", obs.counts, attempts-1)
	}
}

func TestDeliveryKeepsVersionOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.placeOrder(t)
	tg := newTarget(t, func(n int, _ hit) int {
		if n == 0 {
			return http.StatusBadGateway
		}
		return http.StatusAccepted
	})
	sub := e.subscribe(t, tg.URL, o.ID)
	c := &clock{}
	store := &countingStore{Store: e.webhooks}
	d := run(t, store, webhook.Options{Now: c.Now, AllowPrivateTargets: true}, nil)

	e.move(t, o.ID, order.Preparing)
	tg.waitHits(t, 1)
	waitFor(t, "the failure to be recorded", func() bool {
		return e.deliveries(t, sub.ID)[0].Attempts == 1
	})

	// Version 3 is due at once, but version 2 is still pending.
	e.move(t, o.ID, order.Baking)
	e.move(t, o.ID, order.Ready)
	store.waitClaims(t, d)
	if n := len(tg.Hits()); n != 1 {
		t.Fatalf("the target got %d requests while version 2 was pending, want 1", n)
	}

	c.Advance(5 * time.Second)
	d.Poke()
	hits := tg.waitHits(t, 4)
	var got []int64
	for _, h := range hits {
		got = append(got, h.version(t))
	}
	if fmt.Sprint(got) != "[2 2 3 4]" {
		t.Errorf("versions delivered %v, want [2 2 3 4]", got)
	}
}

func TestDeliveryGoneEndsSubscription(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	o := e.placeOrder(t)
	tg := newTarget(t, func(int, hit) int { return http.StatusGone })
	sub := e.subscribe(t, tg.URL, "")
	obs := &outcomes{}
	run(t, e.webhooks, webhook.Options{AllowPrivateTargets: true}, obs)

	e.move(t, o.ID, order.Preparing)
	tg.waitHits(t, 1)
	waitFor(t, "the subscription to end", func() bool {
		subs, err := e.webhooks.FindWebhooks(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return subs[0].State() == webhook.StateEnded
	})
	subs, err := e.webhooks.FindWebhooks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if subs[0].ID != sub.ID || *subs[0].EndedReason != webhook.EndedGone {
		t.Errorf("subscription %+v, want %s ended as gone", subs[0], sub.ID)
	}

	e.move(t, o.ID, order.Baking)
	e.placeOrder(t)
	rows := e.deliveries(t, sub.ID)
	if len(rows) != 1 || rows[0].Status != "failed" {
		t.Errorf("deliveries %+v, want only the one that met 410, failed", rows)
	}
	if obs.count("gone") != 1 {
		t.Errorf("outcomes %v, want one gone", obs.counts)
	}
}

func TestTwoDispatchersDeliverEachOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tg := newTarget(t, nil)
	sub := e.subscribe(t, tg.URL, "")
	const orders = 15
	for range orders {
		o := e.placeOrder(t)
		e.move(t, o.ID, order.Preparing)
	}

	run(t, e.webhooks, webhook.Options{Workers: 3, AllowPrivateTargets: true}, nil)
	run(t, e.webhooks, webhook.Options{Workers: 3, AllowPrivateTargets: true}, nil)
	hits := tg.waitHits(t, 2*orders)
	waitFor(t, "every delivery to succeed", func() bool {
		for _, d := range e.deliveries(t, sub.ID) {
			if d.Status != "succeeded" {
				return false
			}
		}
		return true
	})

	seen := map[string]int{}
	for _, h := range tg.Hits() {
		seen[h.Header.Get("webhook-id")]++
	}
	if len(hits) != 2*orders || len(tg.Hits()) != 2*orders || len(seen) != 2*orders {
		t.Errorf("%d requests for %d deliveries, want %d each", len(tg.Hits()), len(seen),
			2*orders)
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("delivery %s sent %d times", id, n)
		}
	}
}

func TestDeliveryFailures(t *testing.T) {
	t.Parallel()
	elsewhere := newTarget(t, nil)
	tests := []struct {
		name         string
		allowPrivate bool
		timeout      time.Duration
		respond      func(w http.ResponseWriter, r *http.Request)
		wantError    string
		// untouched, when set, must get no request.
		untouched *target
	}{
		{
			name: "internal address refused at delivery", allowPrivate: false,
			wantError: "internal address",
		},
		{
			name: "redirect not followed", allowPrivate: true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL, http.StatusTemporaryRedirect)
			},
			wantError: "307",
			untouched: elsewhere,
		},
		{
			name: "timeout", allowPrivate: true, timeout: 200 * time.Millisecond,
			respond: func(w http.ResponseWriter, r *http.Request) {
				// Once the body is read, the server notices the client leaving.
				_, _ = io.Copy(io.Discard, r.Body)
				select {
				case <-r.Context().Done():
				case <-time.After(waitTimeout):
				}
			},
			wantError: "timeout",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var hits atomic.Int64
			handler := func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				if tt.respond != nil {
					tt.respond(w, r)
				}
			}
			srv := httptest.NewServer(http.HandlerFunc(handler))
			t.Cleanup(srv.Close)
			o := e.placeOrder(t)
			sub := e.subscribe(t, srv.URL, o.ID)
			run(t, e.webhooks, webhook.Options{
				Timeout:             tt.timeout,
				AllowPrivateTargets: tt.allowPrivate,
			}, nil)

			e.move(t, o.ID, order.Preparing)
			waitFor(t, "the failure to be recorded", func() bool {
				return e.deliveries(t, sub.ID)[0].Attempts == 1
			})
			row := e.deliveries(t, sub.ID)[0]
			if row.Status != "pending" || row.LastError == nil ||
				!strings.Contains(*row.LastError, tt.wantError) {
				t.Errorf("after the attempt: %+v, want an error about %q", row, tt.wantError)
			}
			if row.LastError != nil && strings.Contains(*row.LastError, srv.URL) {
				t.Errorf("the stored error %q shows the URL", *row.LastError)
			}
			if !tt.allowPrivate && hits.Load() != 0 {
				t.Errorf("the internal target got %d requests", hits.Load())
			}
			if tt.untouched != nil && len(tt.untouched.Hits()) != 0 {
				t.Errorf("the redirect was followed")
			}
		})
	}
}
