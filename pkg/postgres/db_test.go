package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// secret is the password in URLs that must never show in errors or logs.
const secret = "s3cret-pw"

// closedPortURL returns the URL of a database on a local port where nothing listens.
func closedPortURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://orderstream:%s@%s/orderstream?sslmode=disable", secret, addr)
}

func TestOpen(t *testing.T) {
	t.Parallel()
	db, _ := newTestDB(t)

	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
	if got := db.Stats().MaxOpenConnections; got != 30 {
		t.Errorf("MaxOpenConnections = %d, want 30", got)
	}
}

func TestOpenClosedPort(t *testing.T) {
	t.Parallel()

	db, err := Open(t.Context(), closedPortURL(t), 2, 2)
	if err == nil {
		db.Close()
		t.Fatal("Open on a closed port succeeded")
	}
	if !errors.Is(err, order.ErrUnavailable) {
		t.Errorf("Open: %v, want an error wrapping order.ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("Open: error %q shows the password", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()

	urls := []string{
		"postgres://orderstream:" + secret + "@localhost:notaport/orderstream",
		"postgres://orderstream:" + secret + "%zz@localhost/orderstream",
		"postgres://orderstream:" + secret + "@localhost/orderstream?sslmode=bogus",
	}
	for _, u := range urls {
		db, err := Open(t.Context(), u, 2, 2)
		if err == nil {
			db.Close()
			t.Errorf("Open(%q) succeeded", u)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("Open: error %q shows the password", err)
		}
		if errors.Is(err, order.ErrUnavailable) {
			t.Errorf("Open(%q): %v; a bad URL is not an unavailable database", u, err)
		}
	}
}

func TestWaitForDBReady(t *testing.T) {
	t.Parallel()
	_, dbURL := newTestDB(t)
	logs := &lockedBuffer{}

	err := WaitForDB(t.Context(), dbURL, 30*time.Second, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatalf("WaitForDB: %v", err)
	}
	if strings.Contains(logs.String(), "Waiting") {
		t.Errorf("WaitForDB warned about a database that was up:\n%s", logs)
	}
}

func TestWaitForDBGivesUp(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	start := time.Now()
	err := WaitForDB(t.Context(), closedPortURL(t), 700*time.Millisecond, logger)
	elapsed := time.Since(start)

	if !errors.Is(err, order.ErrUnavailable) {
		t.Errorf("WaitForDB: %v, want an error wrapping order.ErrUnavailable", err)
	}
	if elapsed > 20*time.Second {
		t.Errorf("WaitForDB took %s with a timeout of 700ms", elapsed)
	}
	out := logs.String()
	if n := strings.Count(out, `msg="Waiting for the database"`); n < 2 {
		t.Errorf("WaitForDB logged %d warnings, want at least 2:\n%s", n, out)
	}
	if !strings.Contains(out, "level=WARN") || !strings.Contains(out, "error=") {
		t.Errorf("warnings lack level or error:\n%s", out)
	}
	if strings.Contains(out, secret) || strings.Contains(err.Error(), secret) {
		t.Errorf("the password shows in the error or the logs:\n%v\n%s", err, out)
	}
}

func TestWaitForDBPermanentError(t *testing.T) {
	t.Parallel()
	_, dbURL := newTestDB(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/no_such_database"

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	err = WaitForDB(ctx, u.String(), time.Minute, discard)
	if err == nil {
		t.Fatal("WaitForDB on an unknown database succeeded")
	}
	if errors.Is(err, order.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitForDB: %v; want it to give up at once on an unknown database", err)
	}
}

// TestWaitForDBLateServer starts answering on the port only after WaitForDB has
// failed once, through a TCP proxy to the test server.
func TestWaitForDBLateServer(t *testing.T) {
	t.Parallel()
	_, dbURL := newTestDB(t)
	backend, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	late, err := url.Parse(closedPortURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u := *backend
	u.Host = late.Host

	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	done := make(chan error, 1)
	go func() { done <- WaitForDB(t.Context(), u.String(), 2*time.Minute, logger) }()

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "Waiting for the database") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning within 30s:\n%s", logs)
		}
		select {
		case err := <-done:
			t.Fatalf("WaitForDB returned %v before the server was up", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	startProxy(t, late.Host, backend.Host)

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("WaitForDB: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("WaitForDB still waiting a minute after the server came up:\n%s", logs)
	}
}

// startProxy forwards TCP connections from addr to backend until the test ends.
func startProxy(t *testing.T, addr, backend string) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		closed bool
		conns  []net.Conn
	)
	// track keeps c for closing at cleanup, or closes it now if cleanup has begun.
	track := func(c net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			c.Close()
			return false
		}
		conns = append(conns, c)
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})

	wg.Go(func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", backend)
			if err != nil {
				client.Close()
				continue
			}
			if !track(client) || !track(server) {
				client.Close()
				server.Close()
				return
			}
			wg.Go(func() { io.Copy(server, client); server.Close() })
			wg.Go(func() { io.Copy(client, server); client.Close() })
		}
	})
}
