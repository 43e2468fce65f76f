package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/orderstream/orderstream/pkg/stream"
)

// handleOrderEvents serves an order's event stream, resuming after Last-Event-ID or
// ?last_event_id= (the header wins).
func (s *Server) handleOrderEvents(w http.ResponseWriter, r *http.Request) {
	after, err := resumePoint(r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	o, err := s.store.FindOrderByID(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	after = min(after, o.Version)
	if o.Status.Terminal() && after >= o.Version {
		// Nothing will follow: 204 tells EventSource to stop reconnecting.
		w.WriteHeader(http.StatusNoContent)
		return
	}

	release, err := s.acquireStream()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()

	s.logger.Debug("Stream opened", "order_id", o.ID, "after", after)
	s.streams.Serve(w, r, "order", stream.OrderProducer(s.hub, s.store, o.ID, after))
	s.logger.Debug("Stream closed", "order_id", o.ID)
}

// handleBoardEvents serves the staff feed: a snapshot of open orders, then every event.
func (s *Server) handleBoardEvents(w http.ResponseWriter, r *http.Request) {
	release, err := s.acquireStream()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer release()

	s.logger.Debug("Staff feed opened")
	snapshot := func(ctx context.Context) ([]stream.Message, error) {
		return s.boardSnapshot(ctx, r)
	}
	s.streams.Serve(w, r, "board", stream.BoardProducer(s.hub, snapshot))
	s.logger.Debug("Staff feed closed")
}

func (s *Server) boardSnapshot(ctx context.Context, r *http.Request) ([]stream.Message, error) {
	orders, err := s.store.FindOpenOrders(ctx)
	if err != nil {
		return nil, err
	}
	msgs := make([]stream.Message, 0, len(orders)+1)
	for _, o := range orders {
		data, err := json.Marshal(s.viewOrder(r, o))
		if err != nil {
			return nil, fmt.Errorf("encode snapshot of %s: %w", o.ID, err)
		}
		msgs = append(msgs, stream.Message{Event: "snapshot", Data: data})
	}
	ready := fmt.Appendf(nil, `{"open_orders":%d}`, len(orders))
	return append(msgs, stream.Message{Event: "ready", Data: ready}), nil
}

func (s *Server) acquireStream() (func(), error) {
	release, err := s.streams.Acquire()
	switch {
	case errors.Is(err, stream.ErrTooMany):
		return nil, &apiError{status: http.StatusServiceUnavailable, code: "too_many_streams",
			message: "this server has too many open streams; try again shortly"}
	case err != nil:
		return nil, &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
			message: "this server is shutting down; reconnect"}
	}
	return release, nil
}

// resumePoint reads where a stream resumes: the Last-Event-ID header, else the
// last_event_id query parameter; empty values count as absent. A value must be ASCII
// digits that fit in 63 bits.
func resumePoint(r *http.Request) (int64, error) {
	v := r.Header.Get("Last-Event-ID")
	if v == "" {
		v = r.URL.Query().Get("last_event_id")
	}
	if v == "" {
		return 0, nil
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, badRequest("bad_request", "the resume point must be a version number")
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, badRequest("bad_request", "the resume point is out of range")
	}
	return n, nil
}
