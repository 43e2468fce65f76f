package server

import (
	"net/http"
	"strings"
	"time"
)

// recorder remembers the status and size of a response. It keeps Flush and Unwrap so
// that streams still reach the connection.
type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (rw *recorder) WriteHeader(code int) {
	if rw.status == 0 {
		rw.status = code
	}
	rw.ResponseWriter.WriteHeader(code)
}

func (rw *recorder) Write(p []byte) (int, error) {
	if rw.status == 0 {
		rw.status = http.StatusOK
	}
	n, err := rw.ResponseWriter.Write(p)
	rw.bytes += int64(n)
	return n, err
}

func (rw *recorder) Flush() {
	if f, ok := rw.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (rw *recorder) Unwrap() http.ResponseWriter { return rw.ResponseWriter }

// logRequests logs one line per request, and counts it for metrics, by route pattern.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &recorder{ResponseWriter: w}
		next.ServeHTTP(rw, r)

		d := time.Since(start)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		if rw.status == 0 {
			rw.status = http.StatusOK
		}
		s.logger.Info("Request",
			"method", r.Method,
			"route", route,
			"status", rw.status,
			"duration_ms", float64(d.Microseconds())/1000,
			"bytes", rw.bytes,
		)
		if s.opts.Observer != nil {
			s.opts.Observer.HTTPRequest(route, r.Method, rw.status, d)
		}
	})
}

// jsonFallback answers the API's unknown paths and wrong methods with JSON errors
// instead of the ServeMux's plain text.
func (s *Server) jsonFallback(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		api := r.URL.Path == "/api" || strings.HasPrefix(r.URL.Path, "/api/")
		if pattern != "" || !api {
			mux.ServeHTTP(w, r)
			return
		}
		probe := &statusProbe{header: http.Header{}}
		h.ServeHTTP(probe, r)
		if allow := probe.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if probe.status == http.StatusMethodNotAllowed {
			s.writeError(w, r, &apiError{status: http.StatusMethodNotAllowed,
				code: "method_not_allowed", message: r.Method + " is not allowed here"})
			return
		}
		s.writeError(w, r, &apiError{status: http.StatusNotFound, code: "not_found",
			message: "no such resource"})
	})
}

// statusProbe captures what the ServeMux's own error handlers answer.
type statusProbe struct {
	header http.Header
	status int
}

func (p *statusProbe) Header() http.Header         { return p.header }
func (p *statusProbe) Write(b []byte) (int, error) { return len(b), nil }
func (p *statusProbe) WriteHeader(code int)        { p.status = code }
