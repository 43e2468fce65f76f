package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// URLEnv names the environment variable that points the tests at an existing server, such
// as postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable. Its database is used to
// create and drop the tests' databases, so its user needs the CREATEDB privilege.
const URLEnv = "ORDERSTREAM_TEST_DATABASE_URL"

// shared is the process-wide server behind Shared.
var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Shared returns the process-wide server for tests: the server named by
// ORDERSTREAM_TEST_DATABASE_URL when that is set (see External), otherwise one private server
// started on first use (see Start) and stopped by Main. Tests must not Stop, Restart or Close it.
func Shared() (*Server, error) {
	shared.once.Do(func() {
		if u := os.Getenv(URLEnv); u != "" {
			shared.srv, shared.err = External(u)
			return
		}
		shared.srv, shared.err = Start()
	})
	return shared.srv, shared.err
}

// NewDatabase creates a fresh, empty database on Shared() for the test, drops it when the
// test and its subtests end, and returns its URL. It fails the test when no server can be had:
// a database test never skips, since a skipped test would hide a broken build.
func NewDatabase(tb testing.TB) string {
	tb.Helper()

	srv, err := Shared()
	if err != nil {
		tb.Fatalf("no PostgreSQL for tests (set %s to use a running server): %v", URLEnv, err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	name, err := srv.createDatabase(ctx)
	if err != nil {
		tb.Fatal(err)
	}

	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.DropDatabase(ctx, name); err != nil {
			tb.Error(err)
		}
	})
	return srv.URL(name)
}

// Main runs the tests and then stops and removes the shared private server, if one was
// started. It returns the exit code for os.Exit:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()

	// m.Run has waited for every test, so this read does not race with Shared.
	if shared.srv != nil {
		if err := shared.srv.Close(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: close the shared server: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
