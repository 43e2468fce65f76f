package main

import (
	"bufio"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/pgtest"
)

// scrape reads the replica's metrics into a map from series (name with labels) to value.
func scrape(tb testing.TB, base string) map[string]float64 {
	tb.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestMetricsMove checks that the metrics an operator watches move as an order moves.
func TestMetricsMove(t *testing.T) {
	r := startReplica(t, pgtest.NewDatabase(t), "")
	o := placeOrder(t, r.URL, "pickup")

	resp, err := http.Get(o.EventsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	readUntil := func(s string) {
		t.Helper()
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("stream ended before %q: %v", s, err)
			}
			if strings.Contains(line, s) {
				return
			}
		}
	}
	readUntil(`"status":"placed"`)
	m := scrape(t, r.URL)
	if m[`orderstream_streams_open{kind="order"}`] != 1 {
		t.Errorf("streams_open = %v, want 1", m[`orderstream_streams_open{kind="order"}`])
	}

	move(t, r.URL, o.ID, "preparing")
	readUntil(`"status":"preparing"`)
	move(t, r.URL, o.ID, "cancelled")
	readUntil(`"status":"cancelled"`)
	if _, err := io.ReadAll(br); err != nil {
		t.Fatal(err)
	}

	// The stream's end is counted once its handler returns.
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, r.URL)[`orderstream_streams_open{kind="order"}`] != 0 {
		if time.Now().After(deadline) {
			t.Fatal("streams_open did not fall back to 0")
		}
		time.Sleep(20 * time.Millisecond)
	}
	m = scrape(t, r.URL)
	for series, min := range map[string]float64{
		`orderstream_events_written_total{kind="order"}`:                                                      3,
		`orderstream_event_delivery_seconds_count{kind="order"}`:                                              3,
		`orderstream_events_published_total`:                                                                  2,
		`orderstream_notifications_total`:                                                                     3,
		`orderstream_http_requests_total{code="201",method="POST",route="POST /api/orders"}`:                  1,
		`orderstream_http_requests_total{code="200",method="POST",route="POST /api/orders/{id}/transitions"}`: 2,
		`go_sql_max_open_connections{db_name="orderstream"}`:                                                  20,
	} {
		if m[series] < min {
			t.Errorf("%s = %v, want at least %v", series, m[series], min)
		}
	}
}
