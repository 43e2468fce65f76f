package pgtest

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

// open connects to url and checks the connection, closing it when the test ends.
func open(t *testing.T, url string) *sql.DB {
	t.Helper()

	db, err := sql.Open("postgres", url)
	if err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
	t.Cleanup(func() { db.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		t.Fatalf("ping %s: %v", url, err)
	}
	return db
}

// dbName returns the database named by a URL.
func dbName(t *testing.T, rawURL string) string {
	t.Helper()

	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(u.Path, "/")
}

// databaseExists reports whether srv has the named database.
func databaseExists(t *testing.T, srv *Server, name string) bool {
	t.Helper()

	var n int
	err := open(t, srv.URL("postgres")).QueryRow(
		"SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n)
	if err != nil {
		t.Fatalf("look for database %s: %v", name, err)
	}
	return n == 1
}

func TestNewDatabase(t *testing.T) {
	t.Parallel()

	first := NewDatabase(t)
	second := NewDatabase(t)
	if first == second {
		t.Fatalf("two databases share the URL %s", first)
	}

	db := open(t, first)
	if _, err := db.Exec("CREATE TABLE t (n int)"); err != nil {
		t.Fatalf("create table: %v", err)
	}
	if _, err := db.Exec("INSERT INTO t VALUES (1), (2)"); err != nil {
		t.Fatalf("insert: %v", err)
	}

	var n int
	err := open(t, second).QueryRow(
		"SELECT count(*) FROM information_schema.tables WHERE table_name = 't'").Scan(&n)
	if err != nil {
		t.Fatalf("query the second database: %v", err)
	}
	if n != 0 {
		t.Errorf("the second database sees the first one's table")
	}
}

// TestNewDatabaseParallel creates databases the way parallel tests do, all at once.
func TestNewDatabaseParallel(t *testing.T) {
	t.Parallel()

	for i := range 20 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			open(t, NewDatabase(t))
		})
	}
}

func TestCreateDropDatabase(t *testing.T) {
	t.Parallel()

	srv, err := Shared()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dbURL, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	name := dbName(t, dbURL)
	if !databaseExists(t, srv, name) {
		t.Fatalf("database %s missing after CreateDatabase", name)
	}

	// An open session does not keep the database from being dropped.
	db := open(t, dbURL)

	if err := srv.DropDatabase(ctx, name); err != nil {
		t.Fatalf("DropDatabase: %v", err)
	}
	if databaseExists(t, srv, name) {
		t.Errorf("database %s still there after DropDatabase", name)
	}
	if err := db.PingContext(ctx); err == nil {
		t.Errorf("the session on the dropped database still works")
	}
	if err := srv.DropDatabase(ctx, name); err != nil {
		t.Errorf("DropDatabase of a missing database: %v", err)
	}
}

func TestStopRestart(t *testing.T) {
	t.Parallel()

	srv, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	dbURL, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatalf("CreateDatabase: %v", err)
	}
	db := open(t, dbURL)
	if _, err := db.Exec("CREATE TABLE t (s text); INSERT INTO t VALUES ('kept')"); err != nil {
		t.Fatalf("write: %v", err)
	}

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	pingCtx, pingCancel := context.WithTimeout(ctx, 5*time.Second)
	defer pingCancel()
	if err := db.PingContext(pingCtx); err == nil {
		t.Fatalf("the server still answers after Stop")
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("Stop of a stopped server: %v", err)
	}

	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	var got string
	if err := open(t, dbURL).QueryRowContext(ctx, "SELECT s FROM t").Scan(&got); err != nil {
		t.Fatalf("read after Restart: %v", err)
	}
	if got != "kept" {
		t.Errorf("after Restart read %q, want %q", got, "kept")
	}

	// Restart of a running server works too, on the same port.
	if err := srv.Restart(); err != nil {
		t.Fatalf("Restart of a running server: %v", err)
	}
	open(t, dbURL)

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := os.Stat(srv.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server's directory is still there after Close: %v", err)
	}
	if err := srv.Restart(); err == nil {
		t.Errorf("Restart after Close succeeded")
	}
}

func TestStartSettings(t *testing.T) {
	t.Parallel()

	srv, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer srv.Close()

	dbURL := srv.URL("orders")
	wantURL := "postgres://postgres@" + srv.base.Host + "/orders?sslmode=disable"
	if dbURL != wantURL || !strings.HasPrefix(srv.base.Host, "127.0.0.1:") {
		t.Errorf("URL = %q, want %q on 127.0.0.1", dbURL, wantURL)
	}

	db := open(t, srv.URL("postgres"))

	want := map[string]string{
		"fsync":                   "off",
		"synchronous_commit":      "off",
		"full_page_writes":        "off",
		"max_connections":         "300",
		"listen_addresses":        "127.0.0.1",
		"server_encoding":         "UTF8",
		"unix_socket_directories": filepath.Join(srv.dir, "sock"),
	}
	got := map[string]string{}
	for name := range want {
		var v string
		if err := db.QueryRow("SHOW " + name).Scan(&v); err != nil {
			t.Fatalf("SHOW %s: %v", name, err)
		}
		got[name] = v
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("settings (-want +got):\n%s", diff)
	}
}

// TestStartTempDir checks that Start copes with temporary directories it cannot use as is.
func TestStartTempDir(t *testing.T) {
	// Made under /tmp with t.TempDir's own parent left out: when the tests run as root,
	// t.TempDir is a 0700 directory of root's, which the postgres user cannot enter.
	odd, err := os.MkdirTemp("/tmp", "pgtest odd ")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(odd) })
	if err := os.Chmod(odd, 0o755); err != nil {
		t.Fatal(err)
	}
	long := filepath.Join(odd, strings.Repeat("x", 120))
	if err := os.Mkdir(long, 0o755); err != nil {
		t.Fatal(err)
	}

	root := os.Geteuid() == 0
	tests := []struct {
		name     string
		tmpdir   string
		fallback bool // whether Start must use another directory than tmpdir
	}{
		{"with spaces", odd, false},
		{"missing", filepath.Join(odd, "missing"), true},
		{"not enterable", t.TempDir(), root},
		{"too long for a socket", long, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("TMPDIR", tt.tmpdir)

			srv, err := Start()
			if err != nil {
				t.Fatalf("Start with TMPDIR=%s: %v", tt.tmpdir, err)
			}
			defer srv.Close()
			if used := strings.HasPrefix(srv.dir, tt.tmpdir+"/"); used == tt.fallback {
				t.Errorf("server directory %s, want it under TMPDIR: %v", srv.dir, !tt.fallback)
			}
			if left, _ := filepath.Glob(filepath.Join(tt.tmpdir, "pgtest-*")); tt.fallback &&
				len(left) > 0 {
				t.Errorf("directories left behind in the unusable TMPDIR: %v", left)
			}

			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			dbURL, err := srv.CreateDatabase(ctx)
			if err != nil {
				t.Fatalf("CreateDatabase: %v", err)
			}
			open(t, dbURL)
		})
	}
}

func TestStartReapsStale(t *testing.T) {
	t.Parallel()

	stale, err := Start()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer stale.Close()

	// Make it look like the server of a test process that died without closing it.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := []byte(strconv.Itoa(cmd.Process.Pid) + "\n")
	if err := os.WriteFile(filepath.Join(stale.dir, ownerFile), dead, 0o644); err != nil {
		t.Fatal(err)
	}

	srv, err := Start()
	if err != nil {
		t.Fatalf("second Start: %v", err)
	}
	defer srv.Close()

	if _, err := os.Stat(stale.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stale server's directory is still there: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	db, err := sql.Open("postgres", stale.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); err == nil {
		t.Errorf("the stale server still answers")
	}
}

func TestExternal(t *testing.T) {
	t.Parallel()

	srv, err := External("postgres://app:secret@db.example:6543/admin?sslmode=require")
	if err != nil {
		t.Fatalf("External: %v", err)
	}

	tests := []struct {
		dbname string
		want   string
	}{
		{"orders", "postgres://app:secret@db.example:6543/orders?sslmode=require"},
		{"test_0123", "postgres://app:secret@db.example:6543/test_0123?sslmode=require"},
	}
	for _, tt := range tests {
		if got := srv.URL(tt.dbname); got != tt.want {
			t.Errorf("URL(%q) = %q, want %q", tt.dbname, got, tt.want)
		}
	}

	if err := srv.Stop(); !errors.Is(err, ErrExternal) {
		t.Errorf("Stop = %v, want ErrExternal", err)
	}
	if err := srv.Restart(); !errors.Is(err, ErrExternal) {
		t.Errorf("Restart = %v, want ErrExternal", err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("Close = %v, want nil", err)
	}
}

func TestExternalBadURL(t *testing.T) {
	t.Parallel()

	for _, raw := range []string{
		"",
		"mysql://root@localhost/db",
		"postgres:///db",
		"host=localhost dbname=db",
		"postgres://%zz",
	} {
		if _, err := External(raw); err == nil {
			t.Errorf("External(%q) succeeded", raw)
		}
	}
}

func TestSortByVersionDesc(t *testing.T) {
	t.Parallel()

	dirs := []string{
		"/usr/lib/postgresql/9.6/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/17/bin",
	}
	sortByVersionDesc(dirs)
	want := []string{
		"/usr/lib/postgresql/17/bin",
		"/usr/lib/postgresql/15/bin",
		"/usr/lib/postgresql/10/bin",
		"/usr/lib/postgresql/9.6/bin",
	}
	if diff := cmp.Diff(want, dirs); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
