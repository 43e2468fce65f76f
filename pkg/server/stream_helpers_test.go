package server

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/eventsource"
	"github.com/orderstream/orderstream/pkg/order"
)

// sseConn is an open stream read in the background.
type sseConn struct {
	resp   *http.Response
	items  chan eventsource.Event
	err    error // set before items is closed
	cancel context.CancelFunc
}

// openStream opens path as a stream and fails the test unless it answers 200.
func (a *testApp) openStream(tb testing.TB, path string, header http.Header) *sseConn {
	tb.Helper()
	c, resp := a.tryStream(tb, path, header)
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	return c
}

// tryStream opens path; the stream is read only when the answer is 200.
func (a *testApp) tryStream(tb testing.TB, path string, header http.Header) (*sseConn, *http.Response) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", a.URL+path, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", path, err)
	}
	c := &sseConn{resp: resp, items: make(chan eventsource.Event, 1024), cancel: cancel}
	tb.Cleanup(c.close)
	if resp.StatusCode != http.StatusOK {
		close(c.items)
		return c, resp
	}
	go func() {
		defer close(c.items)
		r := eventsource.NewReader(resp.Body)
		for {
			ev, err := r.Next()
			if err != nil {
				c.err = err
				return
			}
			c.items <- ev
		}
	}()
	return c, resp
}

func (c *sseConn) close() {
	c.cancel()
	c.resp.Body.Close()
}

// next returns the next item of any kind, failing the test after timeout or at the end
// of the stream.
func (c *sseConn) next(tb testing.TB, timeout time.Duration) eventsource.Event {
	tb.Helper()
	select {
	case ev, ok := <-c.items:
		if !ok {
			tb.Fatalf("stream ended: %v", c.err)
		}
		return ev
	case <-time.After(timeout):
		tb.Fatalf("no stream item within %s", timeout)
	}
	panic("unreachable")
}

// nextMessage skips comments and retry items.
func (c *sseConn) nextMessage(tb testing.TB, timeout time.Duration) eventsource.Event {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ev := c.next(tb, time.Until(deadline))
		if ev.Kind == eventsource.Message {
			return ev
		}
	}
}

// nextStatus reads the next status event and decodes it.
func (c *sseConn) nextStatus(tb testing.TB, timeout time.Duration) order.Event {
	tb.Helper()
	m := c.nextMessage(tb, timeout)
	if m.Type != "status" {
		tb.Fatalf("got a %q event, want status: %s", m.Type, m.Data)
	}
	var ev order.Event
	if err := json.Unmarshal([]byte(m.Data), &ev); err != nil {
		tb.Fatalf("decode %s: %v", m.Data, err)
	}
	return ev
}

// waitEnd waits for the server to end the stream, skipping comments; an event before
// the end fails the test.
func (c *sseConn) waitEnd(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-c.items:
			if !ok {
				if c.err != nil && !errors.Is(c.err, io.EOF) {
					tb.Fatalf("stream broke instead of ending: %v", c.err)
				}
				return
			}
			if ev.Kind == eventsource.Message {
				tb.Fatalf("unexpected event before the end: %s %s", ev.Type, ev.Data)
			}
		case <-deadline:
			tb.Fatalf("stream did not end within %s", timeout)
		}
	}
}
