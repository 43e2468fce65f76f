package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerFile, in a server's directory, holds the id of the process that started the server,
// so that a later Start can tell a server left behind by a dead process from a live one.
const ownerFile = "owner.pid"

// maxSocketDir is the longest socket directory that still leaves room for the socket's own
// name (/.s.PGSQL.NNNNN) within the 107 bytes a Unix socket path may have.
const maxSocketDir = 107 - len("/.s.PGSQL.65535")

// pgProgram runs PostgreSQL's programs, as the postgres user when this process is root.
type pgProgram struct {
	bin  string              // directory holding initdb, pg_ctl and postgres
	cred *syscall.Credential // nil when the programs run as this process's user
}

// newProgram finds PostgreSQL's programs and the user to run them as.
func newProgram() (*pgProgram, error) {
	bin, err := findBinDir()
	if err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return &pgProgram{bin: bin}, nil
	}

	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs a postgres user to run "+
			"PostgreSQL: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: uid of postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: gid of postgres: %w", err)
	}
	cred := &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return &pgProgram{bin: bin, cred: cred}, nil
}

// findBinDir returns the directory of PostgreSQL's server programs: $PG_BIN when set, else
// /usr/lib/postgresql/15/bin when it holds them, else pg_config --bindir, else the newest
// /usr/lib/postgresql/*/bin, else the directory initdb is found in on PATH.
func findBinDir() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if !hasServerPrograms(dir) {
			return "", fmt.Errorf("pgtest: PG_BIN=%s has no initdb, pg_ctl and postgres", dir)
		}
		return dir, nil
	}

	candidates := []string{"/usr/lib/postgresql/15/bin"}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	versioned, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sortByVersionDesc(versioned)
	candidates = append(candidates, versioned...)
	if path, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(path); err == nil {
			candidates = append(candidates, filepath.Dir(real))
		}
	}

	for _, dir := range candidates {
		if hasServerPrograms(dir) {
			return dir, nil
		}
	}
	return "", errors.New("pgtest: no PostgreSQL server programs (initdb, pg_ctl, postgres) " +
		"in /usr/lib/postgresql/*/bin or on PATH: install PostgreSQL or set PG_BIN")
}

// hasServerPrograms reports whether dir holds initdb, pg_ctl and postgres.
func hasServerPrograms(dir string) bool {
	for _, name := range []string{"initdb", "pg_ctl", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// sortByVersionDesc sorts /usr/lib/postgresql/<version>/bin paths newest first, comparing
// versions as numbers (so 15 comes before 9.6).
func sortByVersionDesc(dirs []string) {
	version := func(dir string) []int {
		var v []int
		for _, part := range strings.Split(filepath.Base(filepath.Dir(dir)), ".") {
			n, _ := strconv.Atoi(part)
			v = append(v, n)
		}
		return v
	}
	slices.SortStableFunc(dirs, func(a, b string) int {
		return slices.Compare(version(b), version(a))
	})
}

// command prepares one of PostgreSQL's programs to run in dir.
func (p *pgProgram) command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(p.bin, name), args...)
	cmd.Dir = dir
	cmd.Env = childEnv(dir)
	if p.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	}
	// pg_ctl start leaves the server running; should it ever hold the output pipe, do not
	// wait for it.
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs one of PostgreSQL's programs in dir and returns its combined output.
func (p *pgProgram) run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	var out bytes.Buffer
	cmd := p.command(ctx, dir, name, args...)
	cmd.Stdout = &out
	cmd.Stderr = &out
	err := cmd.Run()
	return out.Bytes(), err
}

// childEnv is the environment of PostgreSQL's programs: this process's, without the PG*
// variables that would point them elsewhere, in the C locale, with HOME in dir.
func childEnv(dir string) []string {
	env := make([]string, 0, len(os.Environ())+2)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || strings.HasPrefix(name, "LC_") ||
			name == "LANG" || name == "HOME" {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "HOME="+dir)
}

// mkdir creates a directory owned by the user the programs run as.
func (p *pgProgram) mkdir(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return p.chown(dir)
}

// chown gives path to the user the programs run as.
func (p *pgProgram) chown(path string) error {
	if p.cred == nil {
		return nil
	}
	if err := os.Chown(path, int(p.cred.Uid), int(p.cred.Gid)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}

// makeDir creates the temporary directory of a new server, owned by the user the programs
// run as. It tries $TMPDIR first, then /tmp and /var/tmp: $TMPDIR may not exist, may sit
// under a directory that the postgres user cannot enter (such as /root), or may be too long
// a path for a Unix socket.
func makeDir(p *pgProgram) (string, error) {
	var bases []string
	for _, base := range []string{os.TempDir(), "/tmp", "/var/tmp"} {
		if !slices.Contains(bases, base) {
			bases = append(bases, base)
		}
	}

	var errs []error
	for _, base := range bases {
		dir, err := tryDir(p, base)
		if err == nil {
			return dir, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("pgtest: no usable temporary directory: %w", errors.Join(errs...))
}

// tryDir creates a server directory under base and checks that the programs can use it.
func tryDir(p *pgProgram, base string) (_ string, err error) {
	base, err = filepath.Abs(base)
	if err != nil {
		return "", err
	}
	if len(filepath.Join(base, "pgtest-1234567890", "sock")) > maxSocketDir {
		return "", fmt.Errorf("%s: too long a path for a Unix socket", base)
	}

	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()

	if err := p.chown(dir); err != nil {
		return "", err
	}

	// Running a program in dir proves that its user can reach it through every parent.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := p.run(ctx, dir, "pg_ctl", "--version"); err != nil {
		return "", fmt.Errorf("%s: not usable by PostgreSQL's user: %w %s", base, err, out)
	}

	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	if err := os.WriteFile(filepath.Join(dir, ownerFile), pid, 0o644); err != nil {
		return "", err
	}
	return dir, nil
}

// reapStale stops and removes the servers under base whose test process is gone: a test
// binary killed by a timeout never runs its cleanup. Failures are ignored; they are retried
// by the next Start.
func reapStale(p *pgProgram, base string) {
	const maxReaped = 20

	dirs, _ := filepath.Glob(filepath.Join(base, "pgtest-*"))
	reaped := 0
	for _, dir := range dirs {
		if reaped == maxReaped {
			return
		}
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || processAlive(pid) {
			continue
		}

		data := filepath.Join(dir, "data")
		if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
			p.run(ctx, dir, "pg_ctl", "stop", "--pgdata", data, "--mode", "immediate", "--wait")
			cancel()
		}
		os.RemoveAll(dir)
		reaped++
	}
}
