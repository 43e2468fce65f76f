package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const testToken = "cmd-test-token"

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// buildBinary builds the orderstream binary once per test run.
func buildBinary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "orderstream-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "orderstream")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return binary
}

// replica is an orderstream process.
type replica struct {
	URL  string
	Addr string
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

// syncBuffer is a bytes.Buffer safe for a writer and readers in other goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startReplica runs the binary on dbURL at addr (a free one when empty) and waits
// until it is ready. The process is killed when the test ends.
func startReplica(tb testing.TB, dbURL, addr string, env ...string) *replica {
	tb.Helper()
	if addr == "" {
		addr = freeAddr(tb)
	}
	r := &replica{URL: "http://" + addr, Addr: addr, log: &syncBuffer{}, done: make(chan struct{})}
	r.cmd = exec.Command(buildBinary(tb), "--config", "")
	r.cmd.Env = append(os.Environ(),
		"ORDERSTREAM_DATABASE_URL="+dbURL,
		"ORDERSTREAM_AUTH_STAFF_TOKEN="+testToken,
		"ORDERSTREAM_HTTP_ADDR="+addr,
		"ORDERSTREAM_SSE_RETRY=200ms",
		"ORDERSTREAM_LOG_LEVEL=debug",
	)
	r.cmd.Env = append(r.cmd.Env, env...)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("start orderstream: %v", err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	tb.Cleanup(func() {
		r.kill()
		if tb.Failed() {
			tb.Logf("log of %s:\n%s", addr, r.log.String())
		}
	})

	r.waitReady(tb, 60*time.Second)
	return r
}

func (r *replica) waitReady(tb testing.TB, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-r.done:
			tb.Fatalf("orderstream exited early: %v\n%s", r.err, r.log.String())
		default:
		}
		resp, err := http.Get(r.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("orderstream not ready after %s:\n%s", timeout, r.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (r *replica) kill() {
	select {
	case <-r.done:
	default:
		_ = r.cmd.Process.Kill()
		<-r.done
	}
}

// stop sends SIGTERM and waits for the process to exit.
func (r *replica) stop(tb testing.TB) {
	tb.Helper()
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.done:
	case <-time.After(30 * time.Second):
		tb.Fatalf("orderstream did not stop on SIGTERM:\n%s", r.log.String())
	}
}

// post sends a JSON request and decodes the JSON answer into out.
func post(tb testing.TB, url string, body any, auth bool, out any) int {
	tb.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

type placed struct {
	ID        string `json:"id"`
	EventsURL string `json:"events_url"`
}

func placeOrder(tb testing.TB, base, fulfillment string) placed {
	tb.Helper()
	body := map[string]any{"customer_name": "Grace", "phone": "555 0100 200",
		"fulfillment": fulfillment,
		"items":       []map[string]any{{"pizza": "diavola", "size": "medium", "quantity": 1}}}
	if fulfillment == "delivery" {
		body["address"] = "2 Harbour Road"
	}
	var o placed
	if code := post(tb, base+"/api/orders", body, false, &o); code != http.StatusCreated {
		tb.Fatalf("place order: status %d", code)
	}
	return o
}

func move(tb testing.TB, base, id, status string) {
	tb.Helper()
	url := base + "/api/orders/" + id + "/transitions"
	if code := post(tb, url, map[string]any{"status": status}, true, nil); code != http.StatusOK {
		tb.Fatalf("move %s to %s: status %d", id, status, code)
	}
}

// TestCurlFollowsOrder runs the real binary and the real curl -N: curl sees the
// events as they commit and exits by itself when the order is delivered.
func TestCurlFollowsOrder(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is needed for this test: ", err)
	}
	r := startReplica(t, pgtest.NewDatabase(t), "")
	o := placeOrder(t, r.URL, "pickup")

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, curl, "-sS", "-N", o.EventsURL)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()

	// Each status must show up in curl's output before the next move is made.
	expect := func(status string) {
		t.Helper()
		for {
			select {
			case line, ok := <-lines:
				if !ok {
					t.Fatalf("curl output ended before %s", status)
				}
				if strings.HasPrefix(line, "data: ") && strings.Contains(line, `"status":"`+status+`"`) {
					return
				}
			case <-ctx.Done():
				t.Fatalf("curl did not show %s", status)
			}
		}
	}
	expect("placed")
	for _, s := range []string{"preparing", "baking", "ready", "delivered"} {
		move(t, r.URL, o.ID, s)
		expect(s)
	}
	for range lines {
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("curl did not exit cleanly when the stream ended: %v", err)
	}
}

// TestGracefulShutdown checks that SIGTERM ends open streams (so clients reconnect),
// logs each step and exits 0.
func TestGracefulShutdown(t *testing.T) {
	r := startReplica(t, pgtest.NewDatabase(t), "")
	o := placeOrder(t, r.URL, "delivery")

	resp, err := http.Get(o.EventsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("stream ended before its first event: %v", err)
		}
		if strings.Contains(line, `"status":"placed"`) {
			break
		}
	}

	r.stop(t)
	if r.err != nil {
		t.Fatalf("exit: %v\n%s", r.err, r.log.String())
	}
	// The stream must end cleanly, so that EventSource reconnects, not break.
	if _, err := io.ReadAll(br); err != nil {
		t.Fatalf("stream broke instead of ending: %v", err)
	}
	for _, step := range []string{"Shutting down", "Ending open streams", "HTTP server stopped",
		"Database closed"} {
		if !strings.Contains(r.log.String(), step) {
			t.Errorf("log lacks %q:\n%s", step, r.log.String())
		}
	}
}

func TestCommandLine(t *testing.T) {
	bin := buildBinary(t)
	tests := []struct {
		name    string
		args    []string
		env     []string
		wantErr bool
		want    string
	}{
		{"help lists flags", []string{"--help"}, nil, false, "--sse.heartbeat"},
		{"version", []string{"version"}, nil, false, "orderstream"},
		{"bad duration names the key", nil, []string{"ORDERSTREAM_SSE_HEARTBEAT=abc",
			"ORDERSTREAM_DATABASE_URL=postgres://x/y", "ORDERSTREAM_AUTH_STAFF_TOKEN=" + testToken},
			true, "sse.heartbeat"},
		{"missing database url", nil, []string{"ORDERSTREAM_AUTH_STAFF_TOKEN=" + testToken},
			true, "database.url"},
		{"unknown command", []string{"frobnicate"}, nil, true, "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, append(tt.args, "--config", "")...)
			if tt.name == "version" {
				cmd = exec.Command(bin, "version")
			}
			cmd.Env = append(cleanEnv(), tt.env...)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tt.wantErr || !strings.Contains(string(out), tt.want) {
				t.Fatalf("err = %v, output:\n%s\nwant error %v and %q", err, out, tt.wantErr, tt.want)
			}
		})
	}
}

// cleanEnv is the environment without ORDERSTREAM_ variables.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERSTREAM_") {
			env = append(env, kv)
		}
	}
	return env
}
