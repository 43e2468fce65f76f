package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/r3labs/sse/v2"
)

// ErrTooMany is returned by Acquire when the replica already serves its maximum number of
// open streams.
var ErrTooMany = errors.New("too many open streams")

// ErrClosed is returned by Acquire once the server is shutting down.
var ErrClosed = errors.New("streams are shutting down")

// Options configure a Server.
type Options struct {
	// Retry is sent first on every stream as the client's reconnection delay.
	Retry time.Duration
	// Heartbeat is how often an idle stream gets a comment line.
	Heartbeat time.Duration
	// WriteTimeout bounds each write to a client; a client that does not read for
	// that long is disconnected.
	WriteTimeout time.Duration
	// MaxConnections caps open streams; 0 means no limit.
	MaxConnections int
	// Observer, when set, is told about streams and the events they write.
	Observer Observer
}

// Observer receives notice of stream activity, for metrics.
type Observer interface {
	// StreamOpened and StreamClosed bracket each stream; kind is "order" or "board".
	StreamOpened(kind string)
	StreamClosed(kind string)
	// EventWritten is called when an event was handed to a client's connection.
	EventWritten(kind string, committedAt time.Time)
}

// Message is one thing sent on a stream: an event with a name and data, or, with only
// Comment set, a comment line.
type Message struct {
	ID      string
	Event   string
	Data    []byte
	Comment string
	// At is when the event was committed, for the delivery-latency metric.
	At time.Time
}

// Producer writes a stream's messages through emit until the stream is complete, the
// client leaves or ctx is cancelled. emit fails once the stream cannot take more. A
// Producer that returns ends the response; it does not have to send heartbeats.
type Producer func(ctx context.Context, emit func(Message) error) error

// Server runs Server-Sent Events streams on r3labs/sse. Each connection gets a stream of
// its own inside the sse.Server, so that a slow client only ever holds up itself and
// the library's replay log stays off; what a client should see (stored events, then
// live ones) is decided by the Producer, not by the library.
type Server struct {
	opts   Options
	sse    *sse.Server
	logger *slog.Logger

	open    atomic.Int64
	live    atomic.Int64
	seq     atomic.Uint64
	conns   sync.Map // stream id -> *conn
	closing atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// conn tracks one connection's subscription inside the sse.Server.
type conn struct {
	subscribed   chan struct{}
	unsubscribed chan struct{}
	subOnce      sync.Once
	unsubOnce    sync.Once
}

// NewServer returns a Server with the given options.
func NewServer(opts Options, logger *slog.Logger) *Server {
	s := &Server{opts: opts, logger: logger}
	s.sse = sse.NewWithCallback(s.onSubscribe, s.onUnsubscribe)
	// The library's replay keeps every event in memory for ever and renumbers IDs;
	// replay comes from PostgreSQL instead.
	s.sse.AutoReplay = false
	s.sse.AutoStream = false
	s.sse.Headers = map[string]string{"X-Accel-Buffering": "no"}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

func (s *Server) onSubscribe(id string, _ *sse.Subscriber) {
	if c, ok := s.conns.Load(id); ok {
		c := c.(*conn)
		c.subOnce.Do(func() { close(c.subscribed) })
	}
}

func (s *Server) onUnsubscribe(id string, _ *sse.Subscriber) {
	if c, ok := s.conns.Load(id); ok {
		c := c.(*conn)
		c.unsubOnce.Do(func() { close(c.unsubscribed) })
	}
}

// Acquire reserves room for one more stream. The caller must call the returned release
// function once the stream has ended. It fails with ErrTooMany beyond MaxConnections
// and with ErrClosed after Shutdown.
func (s *Server) Acquire() (release func(), err error) {
	if s.closing.Load() {
		return nil, ErrClosed
	}
	n := s.open.Add(1)
	if max := s.opts.MaxConnections; max > 0 && n > int64(max) {
		s.open.Add(-1)
		return nil, ErrTooMany
	}
	var once sync.Once
	return func() { once.Do(func() { s.open.Add(-1) }) }, nil
}

// Live returns the number of streams that exist inside the sse.Server right now; it
// falls back to zero once every client has left.
func (s *Server) Live() int64 {
	return s.live.Load()
}

// Open returns the number of streams currently reserved.
func (s *Server) Open() int64 {
	return s.open.Load()
}

// Serve answers r with a stream whose messages come from produce. It sends the headers
// and the retry field at once, then the messages, with a comment line whenever the
// stream has been quiet for a heartbeat interval. It returns when the producer is done
// (after the client has been sent everything), when the client leaves, or on Shutdown.
// kind labels the stream for the Observer.
func (s *Server) Serve(w http.ResponseWriter, r *http.Request, kind string, produce Producer) {
	s.wg.Add(1)
	defer s.wg.Done()
	if s.opts.Observer != nil {
		s.opts.Observer.StreamOpened(kind)
		defer s.opts.Observer.StreamClosed(kind)
	}

	id := "c" + strconv.FormatUint(s.seq.Add(1), 10)
	c := &conn{subscribed: make(chan struct{}), unsubscribed: make(chan struct{})}
	s.conns.Store(id, c)
	defer s.conns.Delete(id)
	s.sse.CreateStream(id)
	s.live.Add(1)
	defer s.live.Add(-1)

	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	sw := &streamWriter{ResponseWriter: w, rc: http.NewResponseController(w),
		timeout: s.opts.WriteTimeout, fail: cancel}
	if err := sw.begin(s.opts.Retry); err != nil {
		s.logger.Debug("Stream client gone before start", "error", err)
		s.sse.RemoveStream(id)
		return
	}

	done := make(chan struct{})
	go func() {
		defer close(done)
		s.produce(ctx, id, c, kind, produce)
	}()

	q := r.URL.Query()
	q.Set("stream", id)
	r2 := r.WithContext(ctx)
	r2.URL = cloneURL(r, q.Encode())
	r2.Header = r.Header.Clone()
	// The library reads Last-Event-ID for its own replay, which is off; a value it cannot
	// parse would make it answer 400 after the stream has started.
	r2.Header.Del("Last-Event-ID")
	s.sse.ServeHTTP(sw, r2)

	// The library's handler has returned: detach its subscriber before removing the
	// stream, or the library's own clean-up would block for ever on a stopped stream.
	// The handler always subscribes (the writer flushes, the stream exists and the
	// Last-Event-ID it could refuse is gone), and it returns either after our closing
	// event, when cancel makes the library unsubscribe, or after the subscriber was
	// already removed; either way the unsubscription comes.
	cancel()
	<-done
	<-c.unsubscribed
	s.sse.RemoveStream(id)
}

// produce runs the producer for one connection once the library has registered the
// connection's subscriber (events published before that would be dropped), adds
// heartbeats, and finally publishes the empty event that makes the library end the
// response after everything before it has been written.
func (s *Server) produce(ctx context.Context, id string, c *conn, kind string, produce Producer) {
	select {
	case <-c.subscribed:
	case <-ctx.Done():
		return
	}

	pctx, stop := context.WithCancel(ctx)
	defer stop()
	// Shutdown stops the producer, which then ends the response cleanly.
	unhook := context.AfterFunc(s.ctx, stop)
	defer unhook()

	var mu sync.Mutex
	lastSend := time.Now()
	publish := func(ev *sse.Event) error {
		if pctx.Err() != nil {
			return pctx.Err()
		}
		mu.Lock()
		defer mu.Unlock()
		s.sse.Publish(id, ev)
		lastSend = time.Now()
		return nil
	}
	emit := func(m Message) error {
		if m.Comment != "" {
			return publish(&sse.Event{Comment: []byte(m.Comment)})
		}
		if len(m.Data) == 0 {
			return errors.New("stream: an event needs data")
		}
		ev := &sse.Event{ID: []byte(m.ID), Event: []byte(m.Event), Data: m.Data}
		if err := publish(ev); err != nil {
			return err
		}
		if s.opts.Observer != nil {
			s.opts.Observer.EventWritten(kind, m.At)
		}
		return nil
	}

	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		s.heartbeat(pctx, &mu, &lastSend, publish)
	}()

	if err := produce(pctx, emit); err != nil && !errors.Is(err, context.Canceled) {
		s.logger.Warn("Stream ended early", "kind", kind, "error", err)
	}
	stop()
	<-hbDone

	if ctx.Err() == nil {
		// An event with neither data nor comment makes the library's handler return.
		s.sse.Publish(id, &sse.Event{})
	}
}

func (s *Server) heartbeat(ctx context.Context, mu *sync.Mutex, last *time.Time,
	publish func(*sse.Event) error) {
	t := time.NewTicker(s.opts.Heartbeat)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			mu.Lock()
			quiet := now.Sub(*last) >= s.opts.Heartbeat-s.opts.Heartbeat/10
			mu.Unlock()
			if quiet {
				_ = publish(&sse.Event{Comment: []byte("ping")})
			}
		}
	}
}

// Done is closed when Shutdown begins, so that other long-held requests can end too.
func (s *Server) Done() <-chan struct{} {
	return s.ctx.Done()
}

// Shutdown ends every open stream cleanly (each client is sent what was queued, then
// the response ends, and EventSource reconnects elsewhere with Last-Event-ID) and
// refuses new ones. It waits for the streams to finish or ctx to expire.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closing.Store(true)
	s.cancel()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("end streams: %w", ctx.Err())
	}
}

// streamWriter gives each write to the client a deadline, so that a client that stops
// reading cannot hold a handler for ever, and hides what the library writes that the
// protocol here does not want.
type streamWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	fail    context.CancelFunc
	started bool
	failed  bool
}

// begin sends the headers and the retry field and flushes them.
func (w *streamWriter) begin(retry time.Duration) error {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.ResponseWriter.WriteHeader(http.StatusOK)
	w.started = true
	if _, err := fmt.Fprintf(w, "retry: %d\n\n", retry.Milliseconds()); err != nil {
		return err
	}
	return w.flush()
}

// WriteHeader drops the library's second status line; the stream has begun already.
func (w *streamWriter) WriteHeader(code int) {
	if !w.started {
		w.ResponseWriter.WriteHeader(code)
		w.started = true
	}
}

// emptyID is what the library writes for an event without an ID. An empty id field
// would reset the client's last event ID, and the staff feed carries no IDs at all.
var emptyID = []byte("id: \n")

// Write writes p with a deadline; after a failure it fails fast and ends the stream.
func (w *streamWriter) Write(p []byte) (int, error) {
	if bytes.Equal(p, emptyID) {
		return len(p), nil
	}
	if w.failed {
		return 0, http.ErrHandlerTimeout
	}
	if w.timeout > 0 {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.timeout))
	}
	n, err := w.ResponseWriter.Write(p)
	if err != nil {
		w.failed = true
		w.fail()
	}
	return n, err
}

// Flush sends what has been written to the client.
func (w *streamWriter) Flush() {
	_ = w.flush()
}

func (w *streamWriter) flush() error {
	if w.failed {
		return http.ErrHandlerTimeout
	}
	if err := w.rc.Flush(); err != nil {
		w.failed = true
		w.fail()
		return err
	}
	return nil
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *streamWriter) Unwrap() http.ResponseWriter {
	return w.ResponseWriter
}

func cloneURL(r *http.Request, rawQuery string) *url.URL {
	u := *r.URL
	u.RawQuery = rawQuery
	return &u
}
