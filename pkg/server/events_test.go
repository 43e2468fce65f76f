package server

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/eventsource"
	"github.com/orderstream/orderstream/pkg/order"
)

// wait is the deadline for anything a healthy server does at once.
const wait = 10 * time.Second

var delivery = []order.Status{order.Preparing, order.Baking, order.Ready,
	order.OutForDelivery, order.Delivered}

func TestOrderStreamLifecycle(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	c := app.openStream(t, "/api/orders/"+o.ID+"/events", nil)
	h := c.resp.Header
	for k, want := range map[string]string{"Content-Type": "text/event-stream",
		"Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	// Headers and retry arrive before any event exists beyond the stored one.
	first := c.next(t, wait)
	if first.Kind != eventsource.Retry || first.Retry != 1500*time.Millisecond {
		t.Fatalf("first item = %+v, want retry 1500ms", first)
	}
	m := c.nextMessage(t, wait)
	var ev order.Event
	if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
		t.Fatal(err)
	}
	if m.ID != "1" || m.Type != "status" || ev.Status != order.Placed || ev.PreviousStatus != nil ||
		ev.OrderID != o.ID || ev.Version != 1 {
		t.Fatalf("first event = id %s %s %s, want id 1 status placed with null previous", m.ID, m.Type, m.Data)
	}

	prev := order.Placed
	for i, to := range delivery {
		app.move(t, o.ID, to)
		m := c.nextMessage(t, wait)
		ev := order.Event{}
		if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
			t.Fatal(err)
		}
		want := int64(i + 2)
		if m.ID != fmt.Sprint(want) || ev.Version != want || ev.Status != to || *ev.PreviousStatus != prev {
			t.Fatalf("event = id %s %s, want version %d %s after %s", m.ID, m.Data, want, to, prev)
		}
		if _, err := time.Parse(order.TimeFormat, ev.At.UTC().Format(order.TimeFormat)); err != nil ||
			!strings.HasSuffix(m.Data, `Z"}`) {
			t.Errorf("at is not a UTC time with Z: %s", m.Data)
		}
		prev = to
	}
	c.waitEnd(t, wait)
}

func TestOrderStreamResume(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	app.move(t, o.ID, order.Preparing)
	app.move(t, o.ID, order.Baking) // version 3

	tests := []struct {
		name   string
		path   string
		header string
		want   int64 // first version expected
	}{
		{"no resume point", "", "", 1},
		{"header", "", "1", 2},
		{"query", "?last_event_id=2", "", 3},
		{"header wins over query", "?last_event_id=0", "2", 3},
		{"empty header counts as absent", "?last_event_id=1", "", 2},
		{"empty query counts as absent", "?last_event_id=", "", 1},
		{"leading zeros", "?last_event_id=0002", "", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Last-Event-ID", tt.header)
			}
			c := app.openStream(t, "/api/orders/"+o.ID+"/events"+tt.path, h)
			for v := tt.want; v <= 3; v++ {
				if ev := c.nextStatus(t, wait); ev.Version != v {
					t.Fatalf("got version %d, want %d", ev.Version, v)
				}
			}
		})
	}

	t.Run("above current counts as current", func(t *testing.T) {
		c := app.openStream(t, "/api/orders/"+o.ID+"/events?last_event_id=99", nil)
		if c.next(t, wait).Kind != eventsource.Retry {
			t.Fatal("want retry first")
		}
		app.move(t, o.ID, order.Ready)
		if ev := c.nextStatus(t, wait); ev.Version != 4 || ev.Status != order.Ready {
			t.Fatalf("got %+v, want version 4 ready", ev)
		}
	})
}

func TestOrderStreamErrors(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	done := app.placeOrder(t, order.Pickup)
	app.move(t, done.ID, order.Cancelled) // version 2, terminal

	tests := []struct {
		name   string
		path   string
		header string
		status int
	}{
		{"unknown order", "/api/orders/7a1e1f0e-4f0e-4b7e-9d57-3d2a6c1b0f00/events", "", 404},
		{"malformed id", "/api/orders/not-a-uuid/events", "", 404},
		{"letters", "/api/orders/" + o.ID + "/events", "abc", 400},
		{"negative", "/api/orders/" + o.ID + "/events", "-1", 400},
		{"plus sign", "/api/orders/" + o.ID + "/events?last_event_id=%2B1", "", 400},
		{"space", "/api/orders/" + o.ID + "/events?last_event_id=%201", "", 400},
		{"non-ASCII digit", "/api/orders/" + o.ID + "/events?last_event_id=%D9%A1", "", 400},
		{"beyond 63 bits", "/api/orders/" + o.ID + "/events", "9223372036854775808", 400},
		{"max 63 bits is fine", "/api/orders/" + done.ID + "/events", "9223372036854775807", 204},
		{"resume at terminal", "/api/orders/" + done.ID + "/events", "2", 204},
		{"resume after terminal (query)", "/api/orders/" + done.ID + "/events?last_event_id=5", "", 204},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.header != "" {
				h.Set("Last-Event-ID", tt.header)
			}
			resp, body := app.do(t, "GET", tt.path, nil, h)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status >= 400 && !json.Valid(body) {
				t.Errorf("error body is not JSON: %s", body)
			}
			if tt.status == 204 && len(body) != 0 {
				t.Errorf("204 with a body: %q", body)
			}
		})
	}

	t.Run("terminal order from the start replays then ends", func(t *testing.T) {
		c := app.openStream(t, "/api/orders/"+done.ID+"/events?last_event_id=1", nil)
		if ev := c.nextStatus(t, wait); ev.Status != order.Cancelled {
			t.Fatalf("got %s, want cancelled", ev.Status)
		}
		c.waitEnd(t, wait)
	})
}

func TestOrderStreamHeartbeat(t *testing.T) {
	app := newTestApp(t, func(c *appConfig) { c.Stream.Heartbeat = 50 * time.Millisecond })
	o := app.placeOrder(t, order.Pickup)
	c := app.openStream(t, "/api/orders/"+o.ID+"/events", nil)
	c.nextStatus(t, wait)
	for range 2 {
		if ev := c.next(t, wait); ev.Kind != eventsource.Comment || ev.Comment != "ping" {
			t.Fatalf("got %+v, want a ping comment", ev)
		}
	}
}

func TestStreamLimit(t *testing.T) {
	app := newTestApp(t, func(c *appConfig) { c.Stream.MaxConnections = 2 })
	o := app.placeOrder(t, order.Pickup)
	app.openStream(t, "/api/orders/"+o.ID+"/events", nil)
	app.openStream(t, "/api/events", staff())

	for _, path := range []string{"/api/orders/" + o.ID + "/events", "/api/events"} {
		resp, body := app.do(t, "GET", path, nil, staff())
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("%s: %d (Retry-After %q) %s, want 503 with Retry-After", path,
				resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
}

// TestSeamRace subscribes with random resume points while transitions commit, round
// after round: every subscriber must see each later version exactly once, in order, up
// to the terminal one, whatever the timing between stored and live events.
func TestSeamRace(t *testing.T) {
	rounds := 300
	if testing.Short() {
		rounds = 40
	}
	app := newTestApp(t)
	for round := range rounds {
		o := app.placeOrder(t, order.Delivery)
		var wg sync.WaitGroup
		errs := make(chan error, 8)

		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, to := range delivery {
				if rand.IntN(2) == 0 {
					runtime.Gosched()
				}
				if _, _, err := app.Store.TransitionOrder(t.Context(), o.ID, order.Transition{Status: to}); err != nil {
					errs <- fmt.Errorf("move to %s: %w", to, err)
					return
				}
			}
		}()
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A resume point the order has reached: one above its version would
				// count as its version at the moment of the request.
				cur, err := app.Store.FindOrderByID(t.Context(), o.ID)
				if err != nil {
					errs <- err
					return
				}
				errs <- app.checkSeam(o.ID, rand.Int64N(cur.Version+1))
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
	}
	t.Logf("%d rounds, 3 subscribers each", rounds)
}

// checkSeam follows the order from after and checks it sees after+1..6 exactly once.
func (a *testApp) checkSeam(id string, after int64) error {
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/orders/%s/events", a.URL, id), nil)
	req.Header.Set("Last-Event-ID", fmt.Sprint(after))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNoContent && after >= 6 {
		return nil
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("after %d: status %d", after, resp.StatusCode)
	}

	timer := time.AfterFunc(30*time.Second, func() { resp.Body.Close() })
	defer timer.Stop()
	r := eventsource.NewReader(resp.Body)
	want := after + 1
	for {
		ev, err := r.Next()
		if err != nil {
			if want == 7 {
				return nil
			}
			return fmt.Errorf("after %d: stream ended before version %d: %v", after, want, err)
		}
		if ev.Kind != eventsource.Message {
			continue
		}
		if ev.ID != fmt.Sprint(want) {
			return fmt.Errorf("after %d: got version %s, want %d", after, ev.ID, want)
		}
		want++
	}
}

func TestBoardFeed(t *testing.T) {
	app := newTestApp(t)
	open := app.placeOrder(t, order.Delivery)
	closed := app.placeOrder(t, order.Pickup)
	app.move(t, closed.ID, order.Cancelled)

	c := app.openStream(t, "/api/events", staff())
	if c.next(t, wait).Kind != eventsource.Retry {
		t.Fatal("want retry first")
	}
	snap := c.nextMessage(t, wait)
	var got orderView
	if err := json.Unmarshal([]byte(snap.Data), &got); err != nil {
		t.Fatal(err)
	}
	if snap.Type != "snapshot" || got.ID != open.ID || got.Status != order.Placed || snap.HasID {
		t.Fatalf("got %s %s (id %v), want a snapshot of the open order without id",
			snap.Type, snap.Data, snap.HasID)
	}
	ready := c.nextMessage(t, wait)
	if ready.Type != "ready" || ready.Data != `{"open_orders":1}` {
		t.Fatalf("got %s %s, want ready with one open order", ready.Type, ready.Data)
	}

	app.move(t, open.ID, order.Preparing)
	m := c.nextMessage(t, wait)
	var ev order.Event
	if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
		t.Fatal(err)
	}
	if m.Type != "status" || ev.OrderID != open.ID || ev.Version != 2 || m.HasID {
		t.Fatalf("got %s %s (id %v), want a status event of version 2 without id", m.Type, m.Data, m.HasID)
	}

	resp, body := app.do(t, "GET", "/api/events", nil, nil)
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Bearer realm="orderstream"` {
		t.Fatalf("no token: %d %q %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// TestBoardFeedWire reads the raw bytes of the staff feed: no id field at all.
func TestBoardFeedWire(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)

	conn, err := net.Dial("tcp", app.HTTP.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", testToken)
	_ = conn.SetReadDeadline(time.Now().Add(wait))
	br := bufio.NewReader(conn)
	moved := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if strings.HasPrefix(line, "id") {
			t.Fatalf("the staff feed sent an id line: %q", line)
		}
		if strings.HasPrefix(line, "event: ready") && !moved {
			app.move(t, o.ID, order.Preparing)
			moved = true
		}
		if strings.Contains(line, `"status":"preparing"`) {
			return
		}
	}
}

// TestStreamsEndOnShutdown checks that shutting down ends open streams cleanly, so that
// clients reconnect, and that new streams are refused meanwhile.
func TestStreamsEndOnShutdown(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	c := app.openStream(t, "/api/orders/"+o.ID+"/events", nil)
	b := app.openStream(t, "/api/events", staff())
	c.nextStatus(t, wait)
	b.nextMessage(t, wait)

	if err := app.Streams.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	c.waitEnd(t, wait)
	for {
		if _, ok := <-b.items; !ok {
			break
		}
	}
	resp, _ := app.do(t, "GET", "/api/orders/"+o.ID+"/events", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("new stream during shutdown: %d, want 503", resp.StatusCode)
	}
}

// TestStreamsReleased checks that the library's streams and goroutines go away once
// their clients leave, whichever way the stream ends.
func TestStreamsReleased(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	c := app.openStream(t, "/api/orders/"+o.ID+"/events", nil)
	c.nextStatus(t, wait)
	base := runtime.NumGoroutine()

	for range 50 {
		c := app.openStream(t, "/api/orders/"+o.ID+"/events", nil)
		c.nextStatus(t, wait)
		c.close() // the client leaves
	}
	waitFor(t, wait, "streams released", func() bool { return app.Streams.Live() == 1 })

	for _, to := range delivery { // the server ends the stream
		app.move(t, o.ID, to)
		c.nextStatus(t, wait)
	}
	c.waitEnd(t, wait)
	waitFor(t, wait, "last stream released", func() bool {
		return app.Streams.Live() == 0 && app.Hub.Len() == 0 && app.Streams.Open() == 0
	})
	waitFor(t, wait, "goroutines back to the baseline", func() bool {
		return runtime.NumGoroutine() <= base+2
	})
}

// TestSlowClientDoesNotHoldOthers checks that a client that stops reading is cut off by
// the write deadline, while another client of the same feed gets every event.
func TestSlowClientDoesNotHoldOthers(t *testing.T) {
	app := newTestApp(t, func(c *appConfig) { c.Stream.WriteTimeout = 300 * time.Millisecond })

	slow, err := net.Dial("tcp", app.HTTP.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fmt.Fprintf(slow, "GET /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", testToken)
	fast := app.openStream(t, "/api/events", staff())
	fast.nextMessage(t, wait) // ready
	waitFor(t, wait, "both feeds subscribed", func() bool { return app.Hub.Len() == 2 })

	note := strings.Repeat("n", 4000)
	const events = 3000 // about 12 MB: more than the slow client's socket buffers hold
	for v := range int64(events) {
		app.Hub.Publish(order.Event{OrderID: "x", Version: v + 1, Status: order.Baking, Note: note,
			At: time.Now()})
		if got := fast.nextStatus(t, wait); got.Version != v+1 {
			t.Fatalf("fast client got version %d, want %d", got.Version, v+1)
		}
	}
	waitFor(t, wait, "slow client cut off", func() bool { return app.Hub.Len() == 1 })
}
