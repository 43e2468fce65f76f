package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/lib/pq"

	"github.com/orderstream/orderstream/pkg/order"
)

// Channel is the PostgreSQL notification channel on which every committed event is
// announced as "<order id>:<version>".
const Channel = "order_events"

// ListenerApplicationName is the application_name of the listener's connection, so
// that operators can find it in pg_stat_activity.
const ListenerApplicationName = "orderstream-listener"

// Fanout is where a Listener hands the events it hears.
type Fanout interface {
	// Publish hands on one committed event.
	Publish(ev order.Event)
	// Resync says that events may have been missed and must be read from the store.
	Resync()
	// Wants reports whether anyone here watches the order.
	Wants(orderID string) bool
}

// ListenerObserver is told about the listener's connection, for metrics.
type ListenerObserver interface {
	ListenerReconnected()
	ListenerCatchUp()
	NotificationReceived()
}

// Listener follows the order_events channel through a dedicated connection and hands
// each announced event to a Fanout. When the connection drops and comes back it cannot
// know what it missed, so it tells the Fanout to resync from the stored events.
type Listener struct {
	url      string
	store    *Store
	fanout   Fanout
	logger   *slog.Logger
	ping     time.Duration
	observer ListenerObserver

	connected atomic.Bool
}

// NewListener returns a listener on the database at url. It reads events through store
// and pings its connection every ping interval, so that a silently dead connection is
// noticed and replaced.
func NewListener(url string, store *Store, fanout Fanout, ping time.Duration,
	logger *slog.Logger, observer ListenerObserver) *Listener {
	return &Listener{url: url, store: store, fanout: fanout, ping: ping,
		logger: logger, observer: observer}
}

// Connected reports whether the listener's connection is up.
func (l *Listener) Connected() bool {
	return l.connected.Load()
}

// Run listens until ctx is cancelled.
func (l *Listener) Run(ctx context.Context) error {
	dsn := withApplicationName(l.url, ListenerApplicationName)
	pl := pq.NewListener(dsn, 100*time.Millisecond, 5*time.Second, l.onEvent)
	defer pl.Close()

	// Listen waits until the connection is up; lib/pq keeps trying meanwhile.
	listening := make(chan error, 1)
	go func() { listening <- pl.Listen(Channel) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-listening:
		if err != nil {
			return fmt.Errorf("listen on %s: %w", Channel, err)
		}
	}
	// Streams opened before the channel was listened on may have missed events.
	l.fanout.Resync()

	ticker := time.NewTicker(l.ping)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case n := <-pl.Notify:
			l.handle(ctx, n)
		case <-ticker.C:
			if err := pl.Ping(); err != nil {
				l.logger.Warn("Listener ping failed", "error", err)
			}
		}
	}
}

func (l *Listener) onEvent(ev pq.ListenerEventType, err error) {
	switch ev {
	case pq.ListenerEventConnected:
		l.connected.Store(true)
		l.logger.Info("Listener connected", "channel", Channel)
	case pq.ListenerEventReconnected:
		l.connected.Store(true)
		l.logger.Info("Listener reconnected", "channel", Channel)
		if l.observer != nil {
			l.observer.ListenerReconnected()
		}
	case pq.ListenerEventDisconnected:
		l.connected.Store(false)
		l.logger.Warn("Listener disconnected", "error", err)
	case pq.ListenerEventConnectionAttemptFailed:
		l.connected.Store(false)
		l.logger.Warn("Listener connection attempt failed", "error", err)
	}
}

// handle reads and hands on the event a notification announces. A nil notification
// means the connection was re-established and notifications may have been lost.
func (l *Listener) handle(ctx context.Context, n *pq.Notification) {
	if n == nil {
		l.logger.Info("Listener catching up from stored events")
		if l.observer != nil {
			l.observer.ListenerCatchUp()
		}
		l.fanout.Resync()
		return
	}
	if l.observer != nil {
		l.observer.NotificationReceived()
	}

	orderID, version, err := parsePayload(n.Extra)
	if err != nil {
		l.logger.Error("Ignoring malformed notification", "payload", n.Extra, "error", err)
		return
	}
	if !l.fanout.Wants(orderID) {
		return
	}

	ev, err := l.store.FindEvent(ctx, orderID, version)
	if err != nil {
		// Watchers of this order would otherwise wait for an event that never comes.
		l.logger.Warn("Cannot read notified event; resyncing watchers",
			"order_id", orderID, "version", version, "error", err)
		l.fanout.Resync()
		return
	}
	l.fanout.Publish(*ev)
}

func parsePayload(s string) (string, int64, error) {
	id, v, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, fmt.Errorf("no version in %q", s)
	}
	version, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("bad version in %q: %w", s, err)
	}
	return id, version, nil
}

// withApplicationName sets application_name in a connection string, in either of the
// forms lib/pq accepts: a URL, or space-separated key=value pairs.
func withApplicationName(dsn, name string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("application_name", name)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " application_name=" + name
}
