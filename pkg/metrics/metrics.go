// Package metrics exposes orderstream's Prometheus metrics: streams, events, HTTP
// requests, the database pool, the listener and webhook deliveries.
package metrics

import (
	"database/sql"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the collectors of one process. Its methods satisfy the observer
// interfaces of pkg/stream and pkg/postgres.
type Metrics struct {
	registry *prometheus.Registry

	streamsOpen      *prometheus.GaugeVec
	eventsPublished  prometheus.Counter
	eventsWritten    *prometheus.CounterVec
	deliveryLatency  *prometheus.HistogramVec
	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	listenerReconn   prometheus.Counter
	listenerCatchUps prometheus.Counter
	notifications    prometheus.Counter
	webhookAttempts  *prometheus.CounterVec
}

// New returns metrics registered on a registry of their own, with the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.streamsOpen = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orderstream_streams_open",
		Help: "Server-Sent Events streams open on this replica, by kind (order or board).",
	}, []string{"kind"})
	m.eventsPublished = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderstream_events_published_total",
		Help: "Committed events this replica heard from PostgreSQL and handed to its streams.",
	})
	m.eventsWritten = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderstream_events_written_total",
		Help: "Events written to stream clients, by stream kind.",
	}, []string{"kind"})
	m.deliveryLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orderstream_event_delivery_seconds",
		Help:    "Time from an event's commit to its write on a stream, by stream kind.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	}, []string{"kind"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderstream_http_requests_total",
		Help: "HTTP requests by route pattern, method and status code.",
	}, []string{"route", "method", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orderstream_http_request_duration_seconds",
		Help:    "HTTP request duration by route pattern (streams count until they end).",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	m.listenerReconn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderstream_listener_reconnects_total",
		Help: "Times the LISTEN connection to PostgreSQL was re-established.",
	})
	m.listenerCatchUps = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderstream_listener_catchups_total",
		Help: "Times open streams were told to catch up from stored events.",
	})
	m.notifications = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "orderstream_notifications_total",
		Help: "Notifications received on the order_events channel.",
	})
	m.webhookAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "orderstream_webhook_attempts_total",
		Help: "Webhook delivery attempts by outcome (success, failure, gone, given_up).",
	}, []string{"outcome"})

	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.streamsOpen, m.eventsPublished, m.eventsWritten, m.deliveryLatency,
		m.httpRequests, m.httpDuration, m.listenerReconn, m.listenerCatchUps,
		m.notifications, m.webhookAttempts,
	)
	return m
}

// WatchDB adds the connection pool statistics of db.
func (m *Metrics) WatchDB(db *sql.DB) {
	m.registry.MustRegister(collectors.NewDBStatsCollector(db, "orderstream"))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// StreamOpened counts a stream of the given kind as open.
func (m *Metrics) StreamOpened(kind string) { m.streamsOpen.WithLabelValues(kind).Inc() }

// StreamClosed counts a stream of the given kind as closed.
func (m *Metrics) StreamClosed(kind string) { m.streamsOpen.WithLabelValues(kind).Dec() }

// EventWritten counts an event written to a client, with its latency since commit.
func (m *Metrics) EventWritten(kind string, committedAt time.Time) {
	m.eventsWritten.WithLabelValues(kind).Inc()
	if !committedAt.IsZero() {
		m.deliveryLatency.WithLabelValues(kind).Observe(time.Since(committedAt).Seconds())
	}
}

// EventPublished counts an event handed from the listener to the streams.
func (m *Metrics) EventPublished() { m.eventsPublished.Inc() }

// ListenerReconnected counts a re-established listener connection.
func (m *Metrics) ListenerReconnected() { m.listenerReconn.Inc() }

// ListenerCatchUp counts a resync of open streams from the stored events.
func (m *Metrics) ListenerCatchUp() { m.listenerCatchUps.Inc() }

// NotificationReceived counts one notification.
func (m *Metrics) NotificationReceived() { m.notifications.Inc() }

// WebhookAttempt counts one webhook delivery attempt by outcome.
func (m *Metrics) WebhookAttempt(outcome string) { m.webhookAttempts.WithLabelValues(outcome).Inc() }

// HTTPRequest counts one finished HTTP request.
func (m *Metrics) HTTPRequest(route, method string, code int, d time.Duration) {
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(code)).Inc()
	m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
}
