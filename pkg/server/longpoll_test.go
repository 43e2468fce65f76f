package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// pollResult is the outcome of a request made in the background.
type pollResult struct {
	status  int
	etag    string
	body    []byte
	elapsed time.Duration
	err     error
}

// startPoll sends GET path with the given If-None-Match (none when empty) in the
// background and delivers the outcome on the returned channel. Cancelling ctx abandons
// the request.
func (a *testApp) startPoll(ctx context.Context, path, inm string) <-chan pollResult {
	out := make(chan pollResult, 1)
	go func() {
		start := time.Now()
		res := pollResult{}
		defer func() {
			res.elapsed = time.Since(start)
			out <- res
		}()

		req, err := http.NewRequestWithContext(ctx, "GET", a.URL+path, nil)
		if err != nil {
			res.err = err
			return
		}
		if inm != "" {
			req.Header.Set("If-None-Match", inm)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			res.err = err
			return
		}
		defer resp.Body.Close()
		res.status, res.etag = resp.StatusCode, resp.Header.Get("ETag")
		res.body, res.err = io.ReadAll(resp.Body)
	}()
	return out
}

// awaitPoll waits for a background request to finish.
func awaitPoll(tb testing.TB, ch <-chan pollResult, timeout time.Duration) pollResult {
	tb.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			tb.Fatalf("long poll: %v", res.err)
		}
		return res
	case <-time.After(timeout):
		tb.Fatalf("long poll still held after %s", timeout)
	}
	return pollResult{}
}

// pollHeld waits until the server holds a long poll, which it does subscribed to the
// order's events.
func (a *testApp) pollHeld(tb testing.TB) {
	tb.Helper()
	waitFor(tb, apiTimeout, "the long poll to be held", func() bool { return a.Hub.Len() > 0 })
}

func TestLongPollHeldUntilChange(t *testing.T) {
	tests := []struct {
		name string
		wait string
	}{
		{"25s", "25s"},
		{"capped 5m", "5m"},
		{"capped 1h", "1h"},
		{"fraction", "59.5s"},
	}
	app := newTestApp(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := app.placeOrder(t, order.Delivery)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			ch := app.startPoll(ctx, "/api/orders/"+o.ID+"?wait="+tt.wait, `"1"`)
			app.pollHeld(t)
			select {
			case res := <-ch:
				t.Fatalf("answered before any change: %d %s", res.status, res.body)
			default:
			}

			app.move(t, o.ID, order.Preparing)
			res := awaitPoll(t, ch, apiTimeout)
			if res.status != http.StatusOK || res.etag != `"2"` {
				t.Fatalf("answer = %d ETag %q, want 200 \"2\"; body %s",
					res.status, res.etag, res.body)
			}
			var got orderView
			if err := json.Unmarshal(res.body, &got); err != nil {
				t.Fatal(err)
			}
			if got.ID != o.ID || got.Version != 2 || got.Status != order.Preparing {
				t.Errorf("body = %s v%d, want preparing v2", got.Status, got.Version)
			}
			waitFor(t, apiTimeout, "the subscription to be released", func() bool {
				return app.Hub.Len() == 0
			})
		})
	}
}

func TestLongPollTimesOut(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	res := awaitPoll(t, app.startPoll(context.Background(),
		"/api/orders/"+o.ID+"?wait=300ms", `"1"`), apiTimeout)
	if res.status != http.StatusNotModified || res.etag != `"1"` || len(res.body) != 0 {
		t.Fatalf("answer = %d ETag %q body %q, want 304 \"1\" and no body",
			res.status, res.etag, res.body)
	}
	if res.elapsed < 250*time.Millisecond || res.elapsed >= 5*time.Second {
		t.Errorf("answered after %s, want about 300ms", res.elapsed)
	}
	waitFor(t, apiTimeout, "the subscription to be released", func() bool {
		return app.Hub.Len() == 0
	})
}

func TestLongPollAnswersAtOnce(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	app.move(t, o.ID, order.Preparing) // version 2

	tests := []struct {
		name string
		inm  string
	}{
		{"without If-None-Match", ""},
		{"stale If-None-Match", `"1"`},
		{"another order's tag", `"9"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := awaitPoll(t, app.startPoll(context.Background(),
				"/api/orders/"+o.ID+"?wait=25s", tt.inm), apiTimeout)
			if res.status != http.StatusOK || res.etag != `"2"` {
				t.Fatalf("answer = %d ETag %q, want 200 \"2\"; body %s",
					res.status, res.etag, res.body)
			}
			if res.elapsed >= 5*time.Second {
				t.Errorf("answered after %s, want at once", res.elapsed)
			}
			var got orderView
			if err := json.Unmarshal(res.body, &got); err != nil || got.Version != 2 {
				t.Errorf("body = %s (%v), want version 2", res.body, err)
			}
		})
	}
}

func TestLongPollBadWait(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	waits := []string{"abc", "0s", "0", "-1s", "10", "", "1x", "25s&wait=1s", "%20"}
	ids := []struct{ name, id string }{
		{"known order", o.ID},
		{"unknown order", unknownID},
		{"malformed id", "nope"},
	}
	for _, id := range ids {
		for _, w := range waits {
			t.Run(id.name+"/"+w, func(t *testing.T) {
				for _, inm := range []string{"", `"1"`} {
					resp, body := app.do(t, "GET", "/api/orders/"+id.id+"?wait="+w, nil,
						http.Header{"If-None-Match": {inm}})
					checkError(t, resp, body, http.StatusBadRequest, "bad_request")
				}
			})
		}
	}

	// A valid wait on an unknown order is a 404, at once.
	res := awaitPoll(t, app.startPoll(context.Background(),
		"/api/orders/"+unknownID+"?wait=25s", `"1"`), apiTimeout)
	if res.status != http.StatusNotFound || res.elapsed >= 5*time.Second {
		t.Errorf("unknown order: %d after %s, want 404 at once", res.status, res.elapsed)
	}
}

func TestLongPollClientGone(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	ctx, cancel := context.WithCancel(context.Background())
	ch := app.startPoll(ctx, "/api/orders/"+o.ID+"?wait=25s", `"1"`)
	app.pollHeld(t)
	cancel()
	select {
	case <-ch:
	case <-time.After(apiTimeout):
		t.Fatal("the abandoned request did not end")
	}
	waitFor(t, apiTimeout, "the server to release the abandoned poll", func() bool {
		return app.Hub.Len() == 0
	})
}
