package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/postgres"
)

// process is the orderstream binary running as a child of the test, on a fixed
// address, so that it can be stopped and started again where clients expect it.
type process struct {
	t    *testing.T
	bin  string
	env  []string
	dir  string
	URL  string
	cmd  *exec.Cmd
	done chan error
	runs int
}

// buildBinary compiles cmd/orderstream into a temporary folder of the test.
func buildBinary(t *testing.T) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the server: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "orderstream")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, "build", "-o", bin, "./cmd/orderstream")
	cmd.Dir = filepath.Dir(screenshotDir(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/orderstream: %v\n%s", err, out)
	}
	return bin
}

// newProcess prepares the binary to serve databaseURL on a free local port.
func newProcess(t *testing.T, databaseURL string) *process {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "ORDERSTREAM_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"ORDERSTREAM_DATABASE_URL="+databaseURL,
		"ORDERSTREAM_AUTH_STAFF_TOKEN="+testToken,
		"ORDERSTREAM_HTTP_ADDR="+addr,
		"ORDERSTREAM_HTTP_SHUTDOWN_TIMEOUT=5s",
		"ORDERSTREAM_SSE_RETRY=250ms",
		"ORDERSTREAM_LOG_LEVEL=warn",
	)
	p := &process{t: t, bin: buildBinary(t), env: env, dir: t.TempDir(), URL: "http://" + addr}
	t.Cleanup(func() {
		if p.cmd != nil {
			p.stop()
		}
	})
	return p
}

// start runs the binary and waits until it is ready.
func (p *process) start() {
	p.t.Helper()
	p.runs++
	logPath := filepath.Join(p.dir, fmt.Sprintf("run-%d.log", p.runs))
	logFile, err := os.Create(logPath)
	if err != nil {
		p.t.Fatal(err)
	}
	cmd := exec.Command(p.bin, "--config=")
	cmd.Dir, cmd.Env, cmd.Stdout, cmd.Stderr = p.dir, p.env, logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		p.t.Fatalf("start %s: %v", p.bin, err)
	}
	p.cmd, p.done = cmd, make(chan error, 1)
	go func() {
		p.done <- cmd.Wait()
		logFile.Close()
	}()

	deadline := time.Now().Add(startLimit)
	for {
		resp, err := http.Get(p.URL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-p.done:
			p.cmd = nil
			p.t.Fatalf("orderstream exited while starting: %v\n%s", err, readLog(logPath))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("orderstream not ready after %s\n%s", startLimit, readLog(logPath))
		}
	}
}

// stop ends the binary as an orchestrator would (SIGTERM), killing it if it does not
// stop in time.
func (p *process) stop() {
	p.t.Helper()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.done:
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			p.t.Errorf("orderstream stopped with %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		p.t.Errorf("orderstream did not stop within 20s of SIGTERM")
	}
	p.cmd = nil
}

func readLog(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

// placeOrderAt places a delivery order through the API at base.
func placeOrderAt(t *testing.T, base string) orderView {
	t.Helper()
	body := `{"customer_name":"Ada","phone":"+44 20 7946 0000","fulfillment":"delivery",
		"address":"1 Main St","items":[{"pizza":"margherita","size":"large","quantity":1}]}`
	resp, err := http.Post(base+"/api/orders", "application/json", bytes.NewBufferString(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var o orderView
	err = json.NewDecoder(resp.Body).Decode(&o)
	if err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("place order: %d %v", resp.StatusCode, err)
	}
	return o
}

// openStore opens the store of databaseURL, for changes made behind the server's back.
func openStore(t *testing.T, databaseURL string) *postgres.Store {
	t.Helper()
	db, err := postgres.Open(context.Background(), databaseURL, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return postgres.NewStore(db)
}

// moveInStore moves an order directly in the database.
func moveInStore(t *testing.T, store *postgres.Store, id string, to order.Status) {
	t.Helper()
	_, _, err := store.TransitionOrder(context.Background(), id, order.Transition{Status: to})
	if err != nil {
		t.Fatalf("move %s to %s: %v", id, to, err)
	}
}
