package stream

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/eventsource"
)

func newTestServer(t *testing.T, opts Options, produce Producer) (*Server, *httptest.Server) {
	t.Helper()
	s := NewServer(opts, slog.New(slog.NewTextHandler(io.Discard, nil)))
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Serve(w, r, "test", produce)
	}))
	t.Cleanup(func() {
		_ = s.Shutdown(context.Background())
		hs.Close()
	})
	return s, hs
}

// read returns the items of one stream until it ends.
func read(t *testing.T, url string) []eventsource.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var items []eventsource.Event
	r := eventsource.NewReader(resp.Body)
	for {
		ev, err := r.Next()
		if err == io.EOF {
			return items
		}
		if err != nil {
			t.Fatalf("stream broke: %v", err)
		}
		items = append(items, ev)
	}
}

// TestEmptyDataRefused checks that an event without data, which would make the library
// close the connection, is refused instead, and the stream goes on.
func TestEmptyDataRefused(t *testing.T) {
	var refused error
	_, hs := newTestServer(t, Options{Retry: time.Second, Heartbeat: time.Hour},
		func(ctx context.Context, emit func(Message) error) error {
			refused = emit(Message{ID: "1", Event: "status"})
			return emit(Message{ID: "2", Event: "status", Data: []byte(`{"ok":true}`)})
		})

	items := read(t, hs.URL)
	if refused == nil {
		t.Fatal("an event without data was accepted")
	}
	if len(items) != 2 || items[0].Kind != eventsource.Retry || items[1].ID != "2" {
		t.Fatalf("got %+v, want retry then event 2", items)
	}
}

// TestLibraryIDsKept checks that the library's replay, which renumbers IDs, is off:
// the IDs on the wire are the producer's.
func TestLibraryIDsKept(t *testing.T) {
	_, hs := newTestServer(t, Options{Retry: time.Second, Heartbeat: time.Hour},
		func(ctx context.Context, emit func(Message) error) error {
			for _, id := range []string{"7", "8", "42"} {
				if err := emit(Message{ID: id, Event: "status", Data: []byte("{}")}); err != nil {
					return err
				}
			}
			return nil
		})
	for range 3 { // new connections get no replay of earlier ones
		items := read(t, hs.URL)
		if len(items) != 4 || items[1].ID != "7" || items[2].ID != "8" || items[3].ID != "42" {
			t.Fatalf("got %+v, want ids 7, 8, 42", items)
		}
	}
}
