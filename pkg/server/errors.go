package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/orderstream/orderstream/pkg/order"
)

// apiError is an error with the HTTP status and code it is answered with.
type apiError struct {
	status  int
	code    string
	message string
	field   string
	// currentVersion is the order's version, for a 412.
	currentVersion int64
}

func (e *apiError) Error() string { return e.message }

func badRequest(code, message string) error {
	return &apiError{status: http.StatusBadRequest, code: code, message: message}
}

func invalidField(field, message string) error {
	return &apiError{status: http.StatusUnprocessableEntity, code: "invalid_field",
		message: field + ": " + message, field: field}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code           string         `json:"code"`
	Message        string         `json:"message"`
	Field          string         `json:"field,omitempty"`
	Allowed        []order.Status `json:"allowed,omitzero"`
	CurrentVersion int64          `json:"current_version,omitempty"`
}

// retryAfter is the Retry-After, in seconds, of a 503.
const retryAfter = "5"

// writeError answers with the status and JSON body err maps to. Server errors are
// logged in full and answered with a generic message, so that nothing internal leaks.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client has gone; there is nobody to answer.
		s.logger.Debug("Client left before the answer", "method", r.Method, "path", r.URL.Path)
		return
	}
	status, body := s.report(w, r, err)
	writeJSON(w, status, body)
}

// report maps err to its status and error body, logs it (server errors at Error, the
// rest at Debug) and sets Retry-After on a 503; the caller writes the answer.
func (s *Server) report(w http.ResponseWriter, r *http.Request, err error) (int, errorBody) {
	status, body := s.describe(err)
	if status >= 500 {
		s.logger.Error("Request failed", "method", r.Method, "path", r.URL.Path,
			"status", status, "error", err)
	} else {
		s.logger.Debug("Request refused", "method", r.Method, "path", r.URL.Path,
			"status", status, "error", err)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	return status, body
}

func (s *Server) describe(err error) (int, errorBody) {
	var (
		api     *apiError
		field   *order.FieldError
		illegal *order.IllegalTransitionError
		stale   *order.StaleError
	)
	d := errorDetail{}
	status := http.StatusInternalServerError
	switch {
	case errors.As(err, &api):
		status, d.Code, d.Message, d.Field = api.status, api.code, api.message, api.field
		d.CurrentVersion = api.currentVersion
	case errors.As(err, &field):
		status, d.Code, d.Message, d.Field = http.StatusUnprocessableEntity, "invalid_field",
			field.Error(), field.Field
	case errors.As(err, &illegal):
		status, d.Code, d.Message = http.StatusConflict, "illegal_transition", illegal.Error()
		d.Allowed = illegal.Allowed
		if d.Allowed == nil {
			d.Allowed = []order.Status{}
		}
	case errors.As(err, &stale):
		status, d.Code, d.Message = http.StatusPreconditionFailed, "stale_version", stale.Error()
		d.CurrentVersion = stale.Current
	case errors.Is(err, order.ErrNotFound):
		status, d.Code, d.Message = http.StatusNotFound, "not_found", "no such order"
	case errors.Is(err, order.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		status, d.Code = http.StatusServiceUnavailable, "unavailable"
		d.Message = "the service is temporarily unavailable; try again shortly"
	default:
		d.Code, d.Message = "internal", "internal server error"
	}
	return status, errorBody{Error: d}
}
