package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/pgtest"
)

// nodeLine is one line printed by testdata/node/follow.mjs.
type nodeLine struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
	Data struct {
		Version int64  `json:"version"`
		Status  string `json:"status"`
	} `json:"data"`
}

// TestNodeEventSource follows an order with the eventsource package from npm, the
// client Node programs use, across a restart of its server: it must see every version
// once, reconnect with Last-Event-ID, and stop for good after the last event.
func TestNodeEventSource(t *testing.T) {
	dir, _ := filepath.Abs("testdata/node")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "eventsource")); err != nil {
		t.Fatalf("the eventsource package is missing: run npm ci in %s (make test does)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is needed for this test: ", err)
	}

	db := pgtest.NewDatabase(t)
	a := startReplica(t, db, "")
	b := startReplica(t, db, "")
	o := placeOrder(t, a.URL, "pickup")

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "follow.mjs"), o.EventsURL)
	cmd.Dir = dir
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan nodeLine, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			var l nodeLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Errorf("bad line from node: %q", sc.Text())
				continue
			}
			lines <- l
		}
	}()

	var versions []int64
	reconnects := 0
	next := func(kind string) nodeLine {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("node stopped before a %s line; versions so far %v", kind, versions)
				}
				switch l.Kind {
				case "status":
					versions = append(versions, l.Data.Version)
				case "reconnecting":
					reconnects++
				}
				if l.Kind == kind {
					return l
				}
			case <-ctx.Done():
				t.Fatalf("no %s line from node; versions so far %v", kind, versions)
			}
		}
	}

	next("status") // placed
	move(t, b.URL, o.ID, "preparing")
	next("status")

	// The server stops: the stream ends, the client reconnects, and meanwhile the order
	// moves on through the other replica.
	a.stop(t)
	move(t, b.URL, o.ID, "baking")
	startReplica(t, db, a.Addr)
	next("status")
	move(t, b.URL, o.ID, "ready")
	next("status")
	move(t, b.URL, o.ID, "delivered")
	next("status")
	next("closed")

	if err := cmd.Wait(); err != nil {
		t.Fatalf("node: %v", err)
	}
	want := []int64{1, 2, 3, 4, 5}
	if len(versions) != len(want) {
		t.Fatalf("versions %v, want %v", versions, want)
	}
	for i := range want {
		if versions[i] != want[i] {
			t.Fatalf("versions %v, want %v", versions, want)
		}
	}
	if reconnects < 2 {
		t.Errorf("the client reconnected %d times, want at least 2 (restart, then end)", reconnects)
	}
}
