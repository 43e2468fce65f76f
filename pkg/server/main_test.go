package server

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/pgtest"
	"github.com/orderstream/orderstream/pkg/postgres"
	"github.com/orderstream/orderstream/pkg/stream"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// testToken is the staff token of every test app.
const testToken = "test-staff-token"

// testApp is the whole service over a fresh database: store, listener, hub, streams and
// the real router behind a real HTTP server.
type testApp struct {
	URL     string
	DB      *postgres.DB
	Store   *postgres.Store
	Hub     *stream.Hub
	Streams *stream.Server
	Server  *Server
	HTTP    *httptest.Server
}

// appConfig lets a test change the options before the app starts.
type appConfig struct {
	Stream stream.Options
	Server Options
}

// newTestApp starts the service on a fresh database and stops it when the test ends.
// It returns once the listener is connected, so that no event can be missed.
func newTestApp(tb testing.TB, edits ...func(*appConfig)) *testApp {
	tb.Helper()
	ctx := context.Background()
	url := pgtest.NewDatabase(tb)
	db, err := postgres.Open(ctx, url, 20, 10)
	if err != nil {
		tb.Fatalf("open database: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	if err := postgres.Migrate(ctx, db.DB.DB, logger); err != nil {
		tb.Fatalf("migrate: %v", err)
	}

	cfg := appConfig{
		Stream: stream.Options{Retry: 1500 * time.Millisecond, Heartbeat: 15 * time.Second,
			WriteTimeout: 10 * time.Second, MaxConnections: 1000},
		Server: Options{StaffToken: testToken, Logger: logger, AllowPrivateTargets: true},
	}
	for _, edit := range edits {
		edit(&cfg)
	}

	app := &testApp{DB: db, Store: postgres.NewStore(db), Hub: stream.NewHub()}
	app.Streams = stream.NewServer(cfg.Stream, logger)
	listener := postgres.NewListener(url, app.Store, app.Hub, time.Second, logger, nil)
	lctx, stopListener := context.WithCancel(ctx)
	listenDone := make(chan struct{})
	go func() {
		defer close(listenDone)
		_ = listener.Run(lctx)
	}()
	tb.Cleanup(func() {
		stopListener()
		<-listenDone
	})

	cfg.Server.Hub, cfg.Server.Streams, cfg.Server.Listening = app.Hub, app.Streams, listener.Connected
	app.Server = New(app.Store, cfg.Server)
	app.HTTP = httptest.NewServer(app.Server)
	app.URL = app.HTTP.URL
	tb.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		if err := app.Streams.Shutdown(sctx); err != nil {
			tb.Errorf("shut streams down: %v", err)
		}
		app.HTTP.Close()
	})

	waitFor(tb, 10*time.Second, "listener connected", listener.Connected)
	return app
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// do sends a request with an optional JSON body and returns the response and its body.
func (a *testApp) do(tb testing.TB, method, path string, body any, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			tb.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return roundTrip(tb, req, header)
}

// roundTrip sends req with the extra headers and returns the response and its body.
func roundTrip(tb testing.TB, req *http.Request, header http.Header) (*http.Response, []byte) {
	tb.Helper()
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		tb.Fatalf("%s %s: read body: %v", req.Method, req.URL.Path, err)
	}
	return resp, data
}

func staff() http.Header {
	return http.Header{"Authorization": {"Bearer " + testToken}}
}

// placeOrder places an order through the API and returns it.
func (a *testApp) placeOrder(tb testing.TB, f order.Fulfillment) orderView {
	tb.Helper()
	body := map[string]any{
		"customer_name": "Ada", "phone": "+44 20 7946 0000", "fulfillment": f,
		"items": []map[string]any{{"pizza": "margherita", "size": "large", "quantity": 2}},
	}
	if f == order.Delivery {
		body["address"] = "1 Main St"
	}
	resp, data := a.do(tb, "POST", "/api/orders", body, nil)
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("place order: %d %s", resp.StatusCode, data)
	}
	var o orderView
	if err := json.Unmarshal(data, &o); err != nil {
		tb.Fatal(err)
	}
	return o
}

// move makes a staff transition through the API and fails the test unless it succeeds.
func (a *testApp) move(tb testing.TB, id string, to order.Status) orderView {
	tb.Helper()
	resp, data := a.do(tb, "POST", "/api/orders/"+id+"/transitions",
		map[string]any{"status": to}, staff())
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("move %s to %s: %d %s", id, to, resp.StatusCode, data)
	}
	var o orderView
	if err := json.Unmarshal(data, &o); err != nil {
		tb.Fatal(err)
	}
	return o
}
