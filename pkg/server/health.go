package server

import (
	"context"
	"net/http"
	"time"
)

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReady answers 200 when the database answers and the listener is connected.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()

	checks := map[string]string{"database": "ok", "listener": "ok"}
	ready := true
	if err := s.store.Ping(ctx); err != nil {
		checks["database"] = "unreachable"
		ready = false
		s.logger.Warn("Readiness: database unreachable", "error", err)
	}
	if s.opts.Listening != nil && !s.opts.Listening() {
		checks["listener"] = "disconnected"
		ready = false
	}

	status := http.StatusOK
	checks["status"] = "ready"
	if !ready {
		status = http.StatusServiceUnavailable
		checks["status"] = "unavailable"
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, checks)
}
