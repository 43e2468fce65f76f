// Package server is orderstream's HTTP layer: the JSON API, the Server-Sent Events
// streams, the pages and the operational endpoints, on a standard ServeMux.
package server

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/stream"
)

// Store is what the server needs of persistence.
type Store interface {
	order.Store
	// FindOpenOrders returns the orders not yet delivered or cancelled, oldest first.
	FindOpenOrders(ctx context.Context) ([]*order.Order, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
}

// Options configure a Server.
type Options struct {
	// StaffToken is the secret staff present as a Bearer token or Basic password.
	StaffToken string
	// PublicURL, when set, is the base of absolute links (tracking_url, events_url);
	// otherwise they are built from the request's host.
	PublicURL string
	// Hub and Streams deliver live events; both are required.
	Hub     *stream.Hub
	Streams *stream.Server
	// Listening reports whether the replica's listener is connected, for /readyz.
	Listening func() bool
	// Metrics serves /metrics when set.
	Metrics http.Handler
	// Observer is told about every finished request, for metrics.
	Observer RequestObserver
	// Webhooks, when set, serves the webhook subscription API.
	Webhooks WebhookStore
	// AllowPrivateTargets lets webhooks target loopback and private addresses.
	AllowPrivateTargets bool
	// Logger receives request and error logs.
	Logger *slog.Logger
}

// RequestObserver is told about each finished request.
type RequestObserver interface {
	HTTPRequest(route, method string, code int, d time.Duration)
}

// Server serves orderstream over HTTP.
type Server struct {
	store   Store
	opts    Options
	logger  *slog.Logger
	hub     *stream.Hub
	streams *stream.Server
	mux     *http.ServeMux
	handler http.Handler
}

// New returns a Server with its routes set up.
func New(store Store, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{
		store:   store,
		opts:    opts,
		logger:  opts.Logger,
		hub:     opts.Hub,
		streams: opts.Streams,
		mux:     http.NewServeMux(),
	}
	s.routes()
	s.handler = s.logRequests(s.jsonFallback(s.mux))
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.handler.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/menu", s.handleMenu)
	m.HandleFunc("POST /api/orders", s.handleOrderCreate)
	m.HandleFunc("GET /api/orders/{id}", s.handleOrderGet)
	m.HandleFunc("GET /api/orders/{id}/events", s.handleOrderEvents)

	m.Handle("GET /api/orders", s.requireStaff(apiRealm, http.HandlerFunc(s.handleOrderList)))
	m.Handle("POST /api/orders/{id}/transitions",
		s.requireStaff(apiRealm, http.HandlerFunc(s.handleOrderTransition)))
	m.Handle("GET /api/events", s.requireStaff(apiRealm, http.HandlerFunc(s.handleBoardEvents)))
	s.webhookRoutes()

	m.HandleFunc("GET /healthz", s.handleHealth)
	m.HandleFunc("GET /readyz", s.handleReady)
	if s.opts.Metrics != nil {
		m.Handle("GET /metrics", s.opts.Metrics)
	}
	s.pageRoutes()
}
