package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// realm is the challenge a staff route answers 401 with.
type realm string

const (
	apiRealm  realm = `Bearer realm="orderstream"`
	pageRealm realm = `Basic realm="orderstream staff"`
)

// requireStaff lets a request through when it carries the staff token, as a Bearer
// token or as the password of HTTP Basic (any user name). Both are accepted on every
// staff route; the challenge depends on the route.
func (s *Server) requireStaff(challenge realm, h http.Handler) http.Handler {
	want := sha256.Sum256([]byte(s.opts.StaffToken))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token, ok := staffToken(r); ok && s.opts.StaffToken != "" {
			got := sha256.Sum256([]byte(token))
			if subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
				h.ServeHTTP(w, r)
				return
			}
		}
		w.Header().Set("WWW-Authenticate", string(challenge))
		s.writeError(w, r, &apiError{status: http.StatusUnauthorized, code: "unauthorized",
			message: "a valid staff token is required"})
	})
}

func staffToken(r *http.Request) (string, bool) {
	if _, password, ok := r.BasicAuth(); ok {
		return password, true
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}
