// Package pgtest gives tests a real PostgreSQL server.
//
// Most tests want a fresh, empty database on a server shared by the whole test process:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
//	func TestStore(t *testing.T) {
//		url := pgtest.NewDatabase(t) // dropped when the test ends
//		...
//	}
//
// The shared server is the one named by ORDERSTREAM_TEST_DATABASE_URL when that is set, and
// otherwise a private server started on first use in a temporary directory, which Main stops
// and removes. Tests that stop or restart PostgreSQL (fault tests) start a private server of
// their own with Start, so that they do not disturb the tests sharing the other one.
//
// A private server needs PostgreSQL's programs (initdb, pg_ctl, postgres) but no running
// server. PostgreSQL refuses to run as root, so a test process running as root starts it as
// the postgres user.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lib/pq"
)

// ErrExternal is returned by Stop and Restart on a server that this package does not run.
var ErrExternal = errors.New("pgtest: server is not controlled by this process")

// Time limits. They are generous because a loaded two-core machine running several test
// binaries at once can take many seconds to create and start a cluster.
const (
	initTimeout  = 2 * time.Minute
	startTimeout = 2 * time.Minute
	stopTimeout  = time.Minute
	readyTimeout = 30 * time.Second
)

// startAttempts bounds how often Start picks another port when the one it chose was taken
// between choosing it and PostgreSQL binding it.
const startAttempts = 3

// Server is a PostgreSQL server private to a test process (or an external one).
//
// A private server lives in a temporary directory: its data in data/, its Unix socket in
// sock/ and its log in postgres.log. It listens on 127.0.0.1 only and trusts every local
// connection, with postgres as the superuser.
type Server struct {
	// base is the URL of the database used for CREATE and DROP DATABASE; URL replaces its
	// path to name other databases.
	base *url.URL

	// The rest is set for a private server only.
	dir  string     // the temporary directory; empty for an external server
	pg   *pgProgram // runs PostgreSQL's programs
	data string     // the data directory
	log  string     // the server's log file

	mu      sync.Mutex
	running bool
	closed  bool
}

// Start starts a private PostgreSQL server in a new temporary directory.
//
// It runs initdb (trust authentication, UTF8, superuser postgres) and configures the cluster
// for speed rather than durability (fsync, synchronous_commit and full_page_writes off) with
// max_connections=300, listening only on 127.0.0.1 at a free TCP port and with its Unix
// socket in its own directory. It then runs pg_ctl start -w and waits, up to a deadline,
// until the server accepts connections. When the process runs as root, initdb, pg_ctl and
// postgres run as the postgres user, which owns the directory.
//
// The programs come from $PG_BIN when set, else /usr/lib/postgresql/15/bin when it exists,
// else pg_config --bindir, the newest /usr/lib/postgresql/*/bin, or initdb's directory on PATH.
//
// The caller must Close the server. Servers left behind by test processes that died without
// closing them are stopped and removed by the next Start.
func Start() (*Server, error) {
	pg, err := newProgram()
	if err != nil {
		return nil, err
	}

	dir, err := makeDir(pg)
	if err != nil {
		return nil, err
	}
	reapStale(pg, filepath.Dir(dir))

	s := &Server{
		dir:  dir,
		pg:   pg,
		data: filepath.Join(dir, "data"),
		log:  filepath.Join(dir, "postgres.log"),
	}
	if err := s.create(); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// create initializes the cluster and starts it, retrying on a port taken meanwhile.
func (s *Server) create() error {
	if err := s.initdb(); err != nil {
		return err
	}

	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		if err := s.configure(port); err != nil {
			return err
		}

		err = s.start()
		if err == nil {
			return nil
		}
		if attempt == startAttempts || !strings.Contains(s.logTail(), "could not bind") {
			return err
		}
	}
}

// initdb creates the cluster in s.data.
func (s *Server) initdb() error {
	sock := filepath.Join(s.dir, "sock")
	if err := s.pg.mkdir(sock); err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()

	out, err := s.pg.run(ctx, s.dir, "initdb",
		"--pgdata", s.data,
		"--username", "postgres",
		"--auth", "trust",
		"--encoding", "UTF8",
		"--no-locale",
		"--no-sync")
	if err != nil {
		return fmt.Errorf("pgtest: initdb in %s: %w\n%s", s.data, err, tail(out))
	}
	return nil
}

// configure appends the test settings to postgresql.conf, where later lines win over
// earlier ones, so that calling it again with another port moves the server.
func (s *Server) configure(port int) error {
	settings := []struct{ name, value string }{
		{"listen_addresses", "127.0.0.1"},
		{"port", strconv.Itoa(port)},
		{"unix_socket_directories", filepath.Join(s.dir, "sock")},
		{"max_connections", "300"},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"timezone", "UTC"},
		{"log_timezone", "UTC"},
	}

	var b strings.Builder
	b.WriteString("\n# Settings for tests.\n")
	for _, st := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", st.name, strings.ReplaceAll(st.value, "'", "''"))
	}

	conf := filepath.Join(s.data, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgtest: configure: %w", err)
	}
	_, err = f.WriteString(b.String())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgtest: configure %s: %w", conf, err)
	}

	s.base = &url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(port)),
		Path:     "/postgres",
		RawQuery: "sslmode=disable",
	}
	return nil
}

// start runs pg_ctl start and waits until the server answers. The caller holds s.mu or
// owns s alone.
func (s *Server) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout+10*time.Second)
	defer cancel()

	wait := strconv.Itoa(int(startTimeout / time.Second))
	out, err := s.pg.run(ctx, s.dir, "pg_ctl", "start",
		"--pgdata", s.data, "--log", s.log, "--wait", "--timeout", wait)
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl start: %w\n%s\nserver log:\n%s",
			err, tail(out), s.logTail())
	}
	s.running = true

	if err := s.waitReady(); err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, s.logTail())
	}
	return nil
}

// waitReady polls the server until a connection succeeds or readyTimeout passes. pg_ctl -w
// has already waited for the postmaster; this also proves that TCP connections work.
func (s *Server) waitReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()

	db, err := sql.Open("postgres", s.base.String())
	if err != nil {
		return fmt.Errorf("pgtest: open %s: %w", s.base.Redacted(), err)
	}
	defer db.Close()

	for {
		err := db.PingContext(ctx)
		if err == nil {
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("pgtest: server not ready after %v: %w", readyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop runs pg_ctl stop in the given shutdown mode. The caller holds s.mu.
func (s *Server) stop(mode string) error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout+10*time.Second)
	defer cancel()

	wait := strconv.Itoa(int(stopTimeout / time.Second))
	out, err := s.pg.run(ctx, s.dir, "pg_ctl", "stop",
		"--pgdata", s.data, "--mode", mode, "--wait", "--timeout", wait)
	if err != nil {
		return fmt.Errorf("pgtest: pg_ctl stop -m %s: %w\n%s", mode, err, tail(out))
	}
	s.running = false
	return nil
}

// logTail returns the end of the server's log, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.log)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	return tail(b)
}

// External wraps an existing server given by a postgres:// URL, whose database is used to
// create and drop others. Stop and Restart on it return ErrExternal; Close does nothing.
func External(rawURL string) (*Server, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("pgtest: parse database URL: %w", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return nil, fmt.Errorf("pgtest: database URL %s: scheme is not postgres", u.Redacted())
	}
	if u.Host == "" {
		return nil, fmt.Errorf("pgtest: database URL %s: no host", u.Redacted())
	}
	return &Server{base: u}, nil
}

// URL returns the URL of the named database on the server, such as
// postgres://postgres@127.0.0.1:34567/name?sslmode=disable for a private server. For an
// external server it is the URL given to External with its path replaced.
func (s *Server) URL(dbname string) string {
	u := *s.base
	u.Path = "/" + dbname
	u.RawPath = ""
	return u.String()
}

// CreateDatabase creates an empty database with a random name and returns its URL.
func (s *Server) CreateDatabase(ctx context.Context) (url string, err error) {
	name, err := s.createDatabase(ctx)
	if err != nil {
		return "", err
	}
	return s.URL(name), nil
}

// createDatabase creates an empty database with a random name and returns the name.
func (s *Server) createDatabase(ctx context.Context) (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("pgtest: random database name: %w", err)
	}
	name := "test_" + hex.EncodeToString(b[:])

	if err := s.exec(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name)); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return name, nil
}

// DropDatabase drops the named database, ending the sessions still connected to it.
// A database that does not exist is not an error.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	query := "DROP DATABASE IF EXISTS " + pq.QuoteIdentifier(name) + " WITH (FORCE)"
	if err := s.exec(ctx, query); err != nil {
		return fmt.Errorf("pgtest: drop database %s: %w", name, err)
	}
	return nil
}

// exec runs one statement on the server's base database over a connection of its own, so
// that no pooled connection outlives a Stop.
func (s *Server) exec(ctx context.Context, query string) error {
	db, err := sql.Open("postgres", s.base.String())
	if err != nil {
		return err
	}
	defer db.Close()

	_, err = db.ExecContext(ctx, query)
	return err
}

// Stop shuts the server down (pg_ctl stop -m fast: sessions are ended, data is kept), so
// that tests can see what clients do while the database is gone. Restart brings it back.
// Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	if s.dir == "" {
		return ErrExternal
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if !s.running {
		return nil
	}
	return s.stop("fast")
}

// Restart starts the server again, on the same port with the same data, so that the URLs
// handed out before still work. A running server is stopped first.
func (s *Server) Restart() error {
	if s.dir == "" {
		return ErrExternal
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		return errors.New("pgtest: restart: server is closed")
	}
	if s.running {
		if err := s.stop("fast"); err != nil {
			return err
		}
	}
	return s.start()
}

// Close stops a private server and removes its directory. On an external server it does
// nothing. Closing twice is harmless.
func (s *Server) Close() error {
	if s.dir == "" {
		return nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	if s.closed {
		return nil
	}

	var stopErr error
	if s.running {
		stopErr = s.stop("fast")
		if stopErr != nil {
			// The data is about to be removed: nothing is lost by not shutting down cleanly.
			stopErr = s.stop("immediate")
		}
	}
	s.closed = true
	return errors.Join(stopErr, os.RemoveAll(s.dir))
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the last lines of a program's output or log.
func tail(b []byte) string {
	const maxLines, maxBytes = 30, 4000

	s := strings.TrimRight(string(b), "\n")
	if len(s) > maxBytes {
		s = s[len(s)-maxBytes:]
	}
	lines := strings.Split(s, "\n")
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	return strings.Join(lines, "\n")
}

// processAlive reports whether a process with the given id exists.
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
