package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/pgtest"
)

// nginxPath is where Debian's nginx package puts nginx; .ci/run installs it.
const nginxPath = "/usr/sbin/nginx"

// deployConfig is the proxy configuration that docker-compose.yml mounts.
const deployConfig = "../../deploy/nginx.conf"

// promptly is how soon an event must come through the proxy after the move that
// caused it. A proxy that buffers or compresses a stream holds small events back.
const promptly = 2 * time.Second

// nginxSite says where a test runs deploy/nginx.conf.
type nginxSite struct {
	dir       string   // nginx's prefix: the pid file and temporary files go here
	upstreams []string // addresses standing in for orderstream-1, orderstream-2, …
	listen    string   // the address to listen on; empty keeps the file's port 80
}

var (
	upstreamLine = regexp.MustCompile(`(?m)^(\s*server\s+)orderstream-(\d+):8080\b`)
	listenLine   = regexp.MustCompile(`(?m)^(\s*listen\s+)80;`)
	pidLine      = regexp.MustCompile(`(?m)^(\s*pid\s+)\S+;`)
)

// cacheDir is the image's directory of nginx's temporary files.
const cacheDir = "/var/cache/nginx/"

// requireNginx fails the test when nginx is missing: the proxy tests never skip.
func requireNginx(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat(nginxPath); err != nil {
		tb.Fatalf("the proxy tests run the real nginx: %v (Debian: apt-get install nginx)", err)
	}
}

// renderNginxConfig writes a copy of deploy/nginx.conf for site into site.dir and
// returns its path. Only the upstream server addresses, the listen port, the pid file
// and the temporary directories change; every other directive runs as written. It
// fails when a change finds nothing to change, so that the tests never quietly run a
// configuration other than the one deployed.
func renderNginxConfig(tb testing.TB, site nginxSite) string {
	tb.Helper()
	src, err := os.ReadFile(deployConfig)
	if err != nil {
		tb.Fatal(err)
	}
	conf := string(src)

	replace := func(re *regexp.Regexp, want int, repl func(m []string) string) {
		if n := len(re.FindAllString(conf, -1)); n != want {
			tb.Fatalf("%s: %d lines match %s, want %d", deployConfig, n, re, want)
		}
		conf = re.ReplaceAllStringFunc(conf, func(s string) string {
			return repl(re.FindStringSubmatch(s))
		})
	}
	replace(upstreamLine, len(site.upstreams), func(m []string) string {
		i, _ := strconv.Atoi(m[2])
		if i < 1 || i > len(site.upstreams) {
			tb.Fatalf("%s: unexpected upstream orderstream-%s", deployConfig, m[2])
		}
		return m[1] + site.upstreams[i-1]
	})
	if site.listen != "" {
		replace(listenLine, 1, func(m []string) string { return m[1] + site.listen + ";" })
	}
	pid := filepath.Join(site.dir, "nginx.pid")
	replace(pidLine, 1, func(m []string) string { return m[1] + pid + ";" })
	if !strings.Contains(conf, cacheDir) {
		tb.Fatalf("%s: no paths under %s", deployConfig, cacheDir)
	}
	conf = strings.ReplaceAll(conf, cacheDir, site.dir+"/")

	path := filepath.Join(site.dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		tb.Fatal(err)
	}
	return path
}

// nginxGlobals returns the -g directives of a test's nginx. As root, nginx would
// switch its workers to nobody, who cannot enter the test's private temporary
// directory, so there they keep the test's user.
func nginxGlobals(tb testing.TB, directives string) string {
	tb.Helper()
	if os.Geteuid() != 0 {
		return directives
	}
	u, err := user.Current()
	if err != nil {
		tb.Fatal(err)
	}
	return strings.TrimSpace(directives + " user " + u.Username + ";")
}

// TestProxyConfig runs nginx -t on deploy/nginx.conf. The file names the Compose
// network's hosts orderstream-1 and orderstream-2, which do not resolve here, and
// nginx -t fails on an upstream host it cannot resolve. So it checks a copy whose
// upstream lines point at loopback ports and whose pid file and temporary
// directories are the test's own; the rest, listen 80 included, is checked as written.
func TestProxyConfig(t *testing.T) {
	requireNginx(t)
	dir := t.TempDir()
	conf := renderNginxConfig(t, nginxSite{dir: dir,
		upstreams: []string{"127.0.0.1:18081", "127.0.0.1:18082"}})

	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	args := []string{"-t", "-q", "-p", dir + "/", "-c", conf}
	if g := nginxGlobals(t, ""); g != "" {
		args = append(args, "-g", g)
	}
	cmd := exec.CommandContext(ctx, nginxPath, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// TestProxyConfigDirectives checks the settings of deploy/nginx.conf that the proxy
// tests cannot observe in a few seconds, such as timeouts measured in hours.
func TestProxyConfigDirectives(t *testing.T) {
	src, err := os.ReadFile(deployConfig)
	if err != nil {
		t.Fatal(err)
	}
	conf := normalizeNginx(string(src))
	streams := nginxBlock(t, conf, "events")

	tests := []struct {
		where, text, directive string
	}{
		{"the streams' location", streams, "proxy_buffering off;"},
		{"the streams' location", streams, "proxy_cache off;"},
		{"the streams' location", streams, "gzip off;"},
		{"the streams' location", streams, "proxy_read_timeout 1h;"},
		{"the file", conf, "proxy_http_version 1.1;"},
		{"the file", conf, `proxy_set_header Connection "";`},
		{"the file", conf, "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;"},
		{"the file", conf, "proxy_set_header X-Forwarded-Proto $scheme;"},
		{"the file", conf, "proxy_read_timeout 75s;"},
		{"the file", conf, "proxy_send_timeout 30s;"},
		{"the file", conf, "proxy_next_upstream error timeout http_503;"},
	}
	for _, tt := range tests {
		if !strings.Contains(tt.text, "\n"+tt.directive+"\n") {
			t.Errorf("%s: %s lacks %q", deployConfig, tt.where, tt.directive)
		}
	}
	if strings.Contains(conf, "non_idempotent") {
		t.Errorf("%s: proxy_next_upstream must not replay non-idempotent requests", deployConfig)
	}
}

// normalizeNginx drops comments and blank lines from an nginx configuration and
// trims each line and squeezes its spaces.
func normalizeNginx(conf string) string {
	var b strings.Builder
	b.WriteString("\n")
	for _, line := range strings.Split(conf, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// nginxBlock returns the first location block of conf whose opening line contains
// word, from that line to its closing brace.
func nginxBlock(tb testing.TB, conf, word string) string {
	tb.Helper()
	var b strings.Builder
	depth := 0
	for _, line := range strings.Split(conf, "\n") {
		if depth == 0 && !(strings.HasPrefix(line, "location ") && strings.Contains(line, word)) {
			continue
		}
		b.WriteString("\n" + line)
		depth += strings.Count(line, "{") - strings.Count(line, "}")
		if depth == 0 {
			return b.String() + "\n"
		}
	}
	tb.Fatalf("%s: no location block with %q", deployConfig, word)
	return ""
}

// startNginx runs nginx on deploy/nginx.conf, as a foreground process of the test's
// own, in front of the given replica addresses, and returns its base URL once a
// request through it reaches a replica. nginx stops when the test ends.
func startNginx(tb testing.TB, upstreams ...string) string {
	tb.Helper()
	requireNginx(tb)
	dir := tb.TempDir()
	addr := freeAddr(tb)
	conf := renderNginxConfig(tb, nginxSite{dir: dir, upstreams: upstreams, listen: addr})

	log := &syncBuffer{}
	cmd := exec.Command(nginxPath, "-p", dir+"/", "-c", conf,
		"-g", nginxGlobals(tb, "daemon off;"))
	cmd.Stdout, cmd.Stderr = log, log
	// A group of its own, so that the workers can be killed with the master.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start nginx: %v", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	tb.Cleanup(func() {
		// SIGTERM is nginx's fast shutdown: it does not wait for open streams.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		if tb.Failed() {
			tb.Logf("nginx log:\n%s", log.String())
		}
	})

	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			tb.Fatalf("nginx exited: %v\n%s", waitErr, log.String())
		default:
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("nginx did not pass /healthz on within 30 s:\n%s", log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestProxyStreams runs deploy/nginx.conf in the real nginx in front of two replicas
// on one database and follows an order through it: each event must come through at
// once, heartbeats too, and the stream must end cleanly after the terminal event. The
// order is moved on the replica that does not serve its stream, so every event
// crosses replicas through PostgreSQL before it reaches nginx.
func TestProxyStreams(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	heartbeat := "ORDERSTREAM_SSE_HEARTBEAT=300ms"
	replicas := []*replica{
		startReplica(t, dbURL, "", heartbeat),
		startReplica(t, dbURL, "", heartbeat),
	}
	proxy := startNginx(t, replicas[0].Addr, replicas[1].Addr)

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	board := openStream(t, ctx, "board", proxy+"/api/events", http.Header{
		"Authorization": {"Bearer " + testToken}})
	board.next(t, "ready event", 10*time.Second, func(f sseFrame) bool {
		return f.event == "ready"
	})

	placedAt := time.Now()
	o := placeOrder(t, proxy, "delivery")
	board.expectStatus(t, o.ID, "placed", 1, placedAt)
	checkLinks(t, proxy, o)

	s := openStream(t, ctx, "order", o.EventsURL, nil)
	s.expectStatus(t, o.ID, "placed", 1, time.Now())
	s.next(t, "heartbeat", 5*time.Second, func(f sseFrame) bool { return f.comment == "ping" })

	other := replicas[1-servingReplica(t, replicas)]
	statuses := []string{"preparing", "baking", "ready", "out_for_delivery", "delivered"}
	for i, status := range statuses {
		move(t, other.URL, o.ID, status)
		moved := time.Now()
		s.expectStatus(t, o.ID, status, i+2, moved)
		board.expectStatus(t, o.ID, status, i+2, moved)
	}
	s.expectEnd(t, 10*time.Second)

	// Resuming goes through the proxy too: from version 4 it replays 5 and 6 and
	// ends; at the terminal version it answers 204, which stops EventSource.
	resumed := openStream(t, ctx, "resumed", o.EventsURL, http.Header{"Last-Event-ID": {"4"}})
	resumed.expectStatus(t, o.ID, "out_for_delivery", 5, time.Now())
	resumed.expectStatus(t, o.ID, "delivered", 6, time.Now())
	resumed.expectEnd(t, 10*time.Second)
	if code := streamStatus(t, ctx, o.EventsURL, "6"); code != http.StatusNoContent {
		t.Errorf("resume at the terminal version through the proxy: status %d, want 204", code)
	}
}

// checkLinks checks that the replicas build their absolute links from what nginx
// passes on: the client's Host with its port, and the proxy's own scheme rather than
// an X-Forwarded-Proto the client made up.
func checkLinks(tb testing.TB, proxy string, o placed) {
	tb.Helper()
	want := proxy + "/api/orders/" + o.ID + "/events"
	if o.EventsURL != want {
		tb.Errorf("events_url placed through the proxy = %q, want %q", o.EventsURL, want)
	}

	req, _ := http.NewRequest("GET", proxy+"/api/orders/"+o.ID, nil)
	req.Header.Set("X-Forwarded-Proto", "https")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var got placed
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		tb.Fatalf("GET order through the proxy: status %d: %v", resp.StatusCode, err)
	}
	if got.EventsURL != want {
		tb.Errorf("events_url with a forged X-Forwarded-Proto = %q, want %q", got.EventsURL, want)
	}
}

// servingReplica returns the index of the replica whose metrics show an open order
// stream.
func servingReplica(tb testing.TB, replicas []*replica) int {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i, r := range replicas {
			if openOrderStreams(tb, r) > 0 {
				return i
			}
		}
		if time.Now().After(deadline) {
			tb.Fatal("no replica reports the open order stream")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// openOrderStreams reads orderstream_streams_open{kind="order"} from r's metrics.
func openOrderStreams(tb testing.TB, r *replica) float64 {
	tb.Helper()
	resp, err := http.Get(r.URL + "/metrics")
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	const prefix = `orderstream_streams_open{kind="order"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			n, err := strconv.ParseFloat(v, 64)
			if err != nil {
				tb.Fatalf("metrics of %s: %q: %v", r.Addr, sc.Text(), err)
			}
			return n
		}
	}
	return 0
}

// streamStatus requests a stream resuming after lastEventID and returns the status.
func streamStatus(tb testing.TB, ctx context.Context, url, lastEventID string) int {
	tb.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	req.Header.Set("Last-Event-ID", lastEventID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sseFrame is an event or a comment read from a stream, with the time it arrived.
type sseFrame struct {
	comment   string
	id, event string
	data      string
	at        time.Time
}

// sseStream reads a Server-Sent Events response frame by frame.
type sseStream struct {
	name   string
	frames chan sseFrame
	err    error // how the body ended, nil for a clean end; set before frames closes
}

// openStream requests a stream as EventSource would, offering gzip, and checks the
// response's headers: the proxy must neither compress nor cache it.
func openStream(tb testing.TB, ctx context.Context, name, url string, h http.Header) *sseStream {
	tb.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	// Set by hand, so that the transport leaves a compressed body as it is.
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s stream: %v", name, err)
	}
	tb.Cleanup(func() { resp.Body.Close() })

	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("%s stream: status %d", name, resp.StatusCode)
	}
	checks := []struct{ header, want string }{
		{"Content-Type", "text/event-stream"},
		{"Cache-Control", "no-cache"},
		{"Content-Encoding", ""},
	}
	for _, c := range checks {
		got := resp.Header.Get(c.header)
		if (c.want == "" && got != "") || !strings.HasPrefix(got, c.want) {
			tb.Errorf("%s stream: %s = %q, want %q", name, c.header, got, c.want)
		}
	}

	s := &sseStream{name: name, frames: make(chan sseFrame, 4096)}
	go s.read(ctx, resp.Body)
	return s
}

// read parses the body into frames until it ends or ctx is done.
func (s *sseStream) read(ctx context.Context, body io.Reader) {
	defer close(s.frames)
	send := func(f sseFrame) bool {
		f.at = time.Now()
		select {
		case s.frames <- f:
			return true
		case <-ctx.Done():
			s.err = ctx.Err()
			return false
		}
	}

	br := bufio.NewReader(body)
	var f sseFrame
	for {
		line, err := br.ReadString('\n')
		if errors.Is(err, io.EOF) && line != "" {
			err = errors.New("body ended inside a line")
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				s.err = err
			}
			return
		}
		line = strings.TrimSuffix(line, "\n")
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if f.event != "" || f.data != "" || f.id != "" {
				if !send(f) {
					return
				}
			}
			f = sseFrame{}
		case field == "":
			if !send(sseFrame{comment: value}) {
				return
			}
		case field == "id":
			f.id = value
		case field == "event":
			f.event = value
		case field == "data":
			f.data = value
		}
	}
}

// next returns the next frame that match accepts, skipping others, and fails the
// test when the stream ends first or when none comes within d.
func (s *sseStream) next(tb testing.TB, what string, d time.Duration,
	match func(sseFrame) bool) sseFrame {
	tb.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				tb.Fatalf("%s stream ended (%v) before its %s", s.name, s.err, what)
			}
			if match(f) {
				return f
			}
		case <-timer.C:
			tb.Fatalf("%s stream: no %s within %s", s.name, what, d)
		}
	}
}

// expectStatus checks that the stream's next event is the order's status event of
// the given version, and that it arrived within promptly of since.
func (s *sseStream) expectStatus(tb testing.TB, orderID, status string, version int,
	since time.Time) {
	tb.Helper()
	what := status + " event"
	// Wait a little longer than promptly, so that a late event is reported with its lag.
	f := s.next(tb, what, time.Until(since.Add(promptly+3*time.Second)), func(f sseFrame) bool {
		return f.comment == ""
	})
	if lag := f.at.Sub(since); lag > promptly {
		tb.Fatalf("%s stream: %s came through %s after the change, want under %s",
			s.name, what, lag, promptly)
	}

	var ev struct {
		OrderID string `json:"order_id"`
		Version int    `json:"version"`
		Status  string `json:"status"`
	}
	if f.event != "status" || json.Unmarshal([]byte(f.data), &ev) != nil {
		tb.Fatalf("%s stream: got event %q with %q, want %s", s.name, f.event, f.data, what)
	}
	if ev.OrderID != orderID || ev.Status != status || ev.Version != version {
		tb.Fatalf("%s stream: got %+v, want order %s, %s, version %d",
			s.name, ev, orderID, status, version)
	}
	if f.id != "" && f.id != strconv.Itoa(version) {
		tb.Errorf("%s stream: %s has id %q, want %d", s.name, what, f.id, version)
	}
}

// expectEnd checks that the stream ends cleanly within d with no further event.
func (s *sseStream) expectEnd(tb testing.TB, d time.Duration) {
	tb.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f, ok := <-s.frames:
			if !ok {
				if s.err != nil {
					tb.Fatalf("%s stream broke instead of ending: %v", s.name, s.err)
				}
				return
			}
			if f.comment == "" {
				tb.Fatalf("%s stream: event %q %q after the terminal one", s.name, f.event, f.data)
			}
		case <-timer.C:
			tb.Fatalf("%s stream still open %s after the terminal event", s.name, d)
		}
	}
}
