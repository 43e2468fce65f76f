package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/lib/pq"

	"github.com/orderstream/orderstream/pkg/eventsource"
	"github.com/orderstream/orderstream/pkg/pgtest"
	"github.com/orderstream/orderstream/pkg/postgres"
)

// The statuses a delivery order passes through after placed: versions 2 to 6.
var deliveryPath = []string{"preparing", "baking", "ready", "out_for_delivery", "delivered"}

const finalVersion = 6

// fleet is several replicas on one database, some of which may be stopped.
type fleet struct {
	replicas []*replica
	down     sync.Map // index -> true once killed
}

func startFleet(tb testing.TB, dbURL string, n int, env ...string) *fleet {
	tb.Helper()
	f := &fleet{}
	for range n {
		f.replicas = append(f.replicas, startReplica(tb, dbURL, "", env...))
	}
	return f
}

// base returns the URL of replica i, or of the next one still running.
func (f *fleet) base(i int) string {
	for k := range len(f.replicas) {
		j := (i + k) % len(f.replicas)
		if _, dead := f.down.Load(j); !dead {
			return f.replicas[j].URL
		}
	}
	return f.replicas[i%len(f.replicas)].URL
}

// watcher follows one order as EventSource would: when its stream ends or breaks it
// reconnects with Last-Event-ID, moving on to another replica when one is unreachable.
type watcher struct {
	orderID  string
	replica  int
	versions []int64
	live     atomic.Bool // has received its first event
	err      error
}

func (w *watcher) run(ctx context.Context, f *fleet) {
	var last int64
	for attempt := 0; ctx.Err() == nil; attempt++ {
		base := f.base(w.replica + attempt)
		done, err := w.follow(ctx, base, &last)
		if done || w.err != nil {
			return
		}
		_ = err // a broken stream: reconnect, as EventSource does
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	w.err = fmt.Errorf("order %s: gave up at version %d: %w", w.orderID, last, ctx.Err())
}

// follow reads one connection; it reports whether the order is complete.
func (w *watcher) follow(ctx context.Context, base string, last *int64) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/api/orders/"+w.orderID+"/events", nil)
	if err != nil {
		return false, err
	}
	if *last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNoContent:
		return true, nil
	case http.StatusOK:
	default:
		return false, fmt.Errorf("status %d", resp.StatusCode)
	}

	r := eventsource.NewReader(resp.Body)
	for {
		ev, err := r.Next()
		if err != nil {
			return false, err
		}
		if ev.Kind != eventsource.Message {
			continue
		}
		v, err := strconv.ParseInt(ev.ID, 10, 64)
		if err != nil || v != *last+1 {
			w.err = fmt.Errorf("order %s: after version %d got id %q", w.orderID, *last, ev.ID)
			return true, nil
		}
		*last = v
		w.versions = append(w.versions, v)
		w.live.Store(true)
		if v == finalVersion {
			return true, nil
		}
	}
}

// transition moves an order through any replica, retrying through failures until ctx
// ends. The expected version makes a retry safe: 412 means an earlier try committed.
func transition(ctx context.Context, f *fleet, id string, version int64, status string) error {
	body, _ := json.Marshal(map[string]any{"status": status, "expected_version": version})
	for attempt := 0; ; attempt++ {
		req, _ := http.NewRequestWithContext(ctx, "POST",
			f.base(rand.IntN(len(f.replicas)))+"/api/orders/"+id+"/transitions", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+testToken)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			switch resp.StatusCode {
			case http.StatusOK, http.StatusPreconditionFailed:
				return nil
			case http.StatusServiceUnavailable:
			default:
				return fmt.Errorf("move %s to %s: status %d", id, status, resp.StatusCode)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("move %s to %s: %w (last error %v)", id, status, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// burst places orders, watches each from every replica, moves them all to delivered
// and calls fault once a third of the transitions have been made. Every watcher must
// end with versions 1 to 6, each once and in order.
func burst(t *testing.T, f *fleet, orders int, fault func()) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()

	ids := make([]string, orders)
	for i := range ids {
		ids[i] = placeOrder(t, f.base(i), "delivery").ID
	}
	var watchers []*watcher
	var wg sync.WaitGroup
	for _, id := range ids {
		for r := range f.replicas {
			w := &watcher{orderID: id, replica: r}
			watchers = append(watchers, w)
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(ctx, f)
			}()
		}
	}
	deadline := time.Now().Add(time.Minute)
	for _, w := range watchers {
		for !w.live.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("watcher of %s on replica %d never got its first event", w.orderID, w.replica)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}

	var moved atomic.Int64
	var faultOnce sync.Once
	total := int64(orders * len(deliveryPath))
	errs := make(chan error, orders)
	var drivers sync.WaitGroup
	for _, id := range ids {
		drivers.Add(1)
		go func() {
			defer drivers.Done()
			for i, status := range deliveryPath {
				if err := transition(ctx, f, id, int64(i+1), status); err != nil {
					errs <- err
					return
				}
				if moved.Add(1) == total/3 && fault != nil {
					faultOnce.Do(fault)
				}
			}
		}()
	}
	drivers.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	wg.Wait()

	for _, w := range watchers {
		if w.err != nil {
			t.Errorf("watcher on replica %d: %v", w.replica, w.err)
			continue
		}
		if len(w.versions) != finalVersion {
			t.Errorf("watcher of %s on replica %d saw %v, want 1..%d", w.orderID, w.replica,
				w.versions, finalVersion)
		}
	}
	t.Logf("%d orders, %d watchers, %d transitions", orders, len(watchers), total)
}

func TestFleetFanOut(t *testing.T) {
	f := startFleet(t, pgtest.NewDatabase(t), 3)
	burst(t, f, 10, nil)
}

// TestFleetListenerTerminated cuts every replica's LISTEN connection mid-burst.
func TestFleetListenerTerminated(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	f := startFleet(t, dbURL, 3, "ORDERSTREAM_DATABASE_LISTENER_PING=500ms")
	admin, err := sql.Open("postgres", dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()

	burst(t, f, 10, func() {
		var n int
		err := admin.QueryRow(`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = $1`,
			postgres.ListenerApplicationName).Scan(&n)
		if err != nil || n != len(f.replicas) {
			t.Errorf("terminated %d listener connections (%v), want %d", n, err, len(f.replicas))
		}
	})
}

// TestFleetPostgresRestart restarts PostgreSQL itself mid-burst.
func TestFleetPostgresRestart(t *testing.T) {
	pg, err := pgtest.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	dbURL, err := pg.CreateDatabase(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	f := startFleet(t, dbURL, 3)

	burst(t, f, 8, func() {
		if err := pg.Restart(); err != nil {
			t.Errorf("restart PostgreSQL: %v", err)
		}
	})
	for i, r := range f.replicas {
		r.waitReady(t, time.Minute)
		t.Logf("replica %d ready again", i)
	}
}

// TestFleetReplicaKilled kills a replica with SIGKILL mid-burst; its watchers move to
// another replica and resume with Last-Event-ID.
func TestFleetReplicaKilled(t *testing.T) {
	f := startFleet(t, pgtest.NewDatabase(t), 3)
	burst(t, f, 10, func() {
		f.down.Store(0, true)
		f.replicas[0].kill()
	})
	if f.replicas[0].err == nil {
		t.Fatal("the killed replica should have exited with an error")
	}
}
