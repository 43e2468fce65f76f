package server

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/static"
)

// contentSecurityPolicy allows the pages nothing but their own files: no inline script
// or style, no other origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; connect-src 'self'; form-action 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'"

// finishedOnBoard is how many delivered and how many cancelled orders the board shows.
const finishedOnBoard = 8

// pageSet serves the pages, their assets and the staff board.
type pageSet struct {
	s     *Server
	fsys  fs.FS
	tmpl  *template.Template
	html  map[string][]byte // page file name, such as index.html, to content
	etags map[string]string // path, such as assets/site.css, to entity tag
}

// pageRoutes registers the customer pages, their assets and the staff board.
func (s *Server) pageRoutes() {
	p, err := newPageSet(s, static.FS)
	if err != nil {
		// The files are embedded: only a broken build gets here.
		panic(err)
	}

	m := s.mux
	m.Handle("GET /static/", p.assets())
	m.HandleFunc("GET /{$}", p.page("index.html"))
	m.HandleFunc("GET /orders/{id}", p.handleTrackingPage)

	staff := func(h http.HandlerFunc) http.Handler {
		return s.requireStaff(pageRealm, securityHeaders(h))
	}
	m.Handle("GET /staff", staff(p.handleBoard))
	m.Handle("GET /staff/events", s.requireStaff(pageRealm, http.HandlerFunc(s.handleBoardEvents)))
	// The order as GET /api/orders/{id} answers it, under the board's Basic auth.
	m.Handle("GET /staff/orders/{id}", staff(s.handleOrderGet))
	m.Handle("GET /staff/orders/{id}/card", staff(p.handleBoardCard))

	// Cross-origin checks come first, so a forged post is refused whatever credentials
	// the browser attaches to it.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(p.handleCrossOrigin))
	m.Handle("POST /staff/orders/{id}/transitions", cop.Handler(staff(p.handleBoardTransition)))
}

// newPageSet parses the templates of fsys and reads its pages and assets, computing
// the entity tag of each.
func newPageSet(s *Server, fsys fs.FS) (*pageSet, error) {
	tmpl, err := template.ParseFS(fsys, "templates/*.html")
	if err != nil {
		return nil, fmt.Errorf("parse page templates: %w", err)
	}
	p := &pageSet{s: s, fsys: fsys, tmpl: tmpl, html: map[string][]byte{},
		etags: map[string]string{}}

	for _, dir := range []string{"assets", "pages"} {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			return nil, fmt.Errorf("read embedded %s: %w", dir, err)
		}
		for _, e := range entries {
			b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
			if err != nil {
				return nil, fmt.Errorf("read embedded %s/%s: %w", dir, e.Name(), err)
			}
			sum := sha256.Sum256(b)
			p.etags[path.Join(dir, e.Name())] = `"` + hex.EncodeToString(sum[:8]) + `"`
			if dir == "pages" {
				p.html[e.Name()] = b
			}
		}
	}
	return p, nil
}

// setSecurityHeaders sets the headers every page and asset carries. None of them is
// versioned in its URL, so browsers revalidate each use (no-cache).
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Cache-Control", "no-cache")
}

// securityHeaders sets the security headers on every answer of h.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setSecurityHeaders(w.Header())
		h.ServeHTTP(w, r)
	})
}

// assets serves the style sheet, scripts and images. They carry no version in their
// names, so browsers revalidate them (no-cache) against an entity tag of their content.
func (p *pageSet) assets() http.Handler {
	sub, err := fs.Sub(p.fsys, "assets")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return securityHeaders(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		tag, ok := p.etags["assets/"+name]
		if !ok {
			// Not a file of assets/ (a folder, say): no listings.
			http.NotFound(w, r)
			return
		}
		w.Header().Set("ETag", tag)
		files.ServeHTTP(w, r)
	}))
}

// page serves one of the static HTML pages.
func (p *pageSet) page(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p.writePage(w, r, name, http.StatusOK)
	}
}

// handleTrackingPage serves the tracking page, which reads its order from the API.
// For an order that does not exist the page still comes (it says so in words), with
// the status 404.
func (p *pageSet) handleTrackingPage(w http.ResponseWriter, r *http.Request) {
	status := http.StatusOK
	_, err := p.s.store.FindOrderByID(r.Context(), r.PathValue("id"))
	if errors.Is(err, order.ErrNotFound) {
		status = http.StatusNotFound
	}
	p.writePage(w, r, "order.html", status)
}

// writePage answers a static HTML page. A 200 honours conditional requests.
func (p *pageSet) writePage(w http.ResponseWriter, r *http.Request, name string, status int) {
	hd := w.Header()
	setSecurityHeaders(hd)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	b := p.html[name]
	if status != http.StatusOK {
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return
	}
	hd.Set("ETag", p.etags["pages/"+name])
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

// handleCrossOrigin refuses a form posted from another site.
func (p *pageSet) handleCrossOrigin(w http.ResponseWriter, r *http.Request) {
	p.s.logger.Warn("Cross-origin form post refused", "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
	if wantsJSON(r) {
		p.s.writeError(w, r, &apiError{status: http.StatusForbidden, code: "forbidden",
			message: "cross-origin requests are not allowed"})
		return
	}
	p.renderProblem(w, http.StatusForbidden, "Refused",
		"This form was sent from another site, so the kitchen board refused it.")
}

// wantsJSON reports whether the client asked for a JSON answer rather than a page.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if mt == "application/json" {
			return true
		}
	}
	return false
}

// renderProblem answers a small HTML page for an error on the staff pages.
func (p *pageSet) renderProblem(w http.ResponseWriter, status int, title, text string) {
	hd := w.Header()
	setSecurityHeaders(hd)
	hd.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	data := struct{ Title, Text string }{title, text}
	if err := p.tmpl.ExecuteTemplate(w, "problem", data); err != nil {
		p.s.logger.Error("Render problem page", "error", err)
	}
}

// parseExpectedVersion reads the form's expected_version: empty means none.
func parseExpectedVersion(v string) (*int64, error) {
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 {
		return nil, invalidField("expected_version", "must be a version number from 1")
	}
	return &n, nil
}

// shortID is how people refer to an order: the first eight characters of its id.
func shortID(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// money renders cents the way the pages do.
func money(cents int64) string {
	sign := ""
	if cents < 0 {
		sign, cents = "-", -cents
	}
	return fmt.Sprintf("%s€%d.%02d", sign, cents/100, cents%100)
}

// statusWords are the board's names for each status and for the action that moves an
// order there.
var statusWords = map[order.Status]struct{ column, action string }{
	order.Placed:         {"New", ""},
	order.Preparing:      {"Preparing", "Start preparing"},
	order.Baking:         {"In the oven", "Into the oven"},
	order.Ready:          {"Ready", "Mark ready"},
	order.OutForDelivery: {"Out for delivery", "Out for delivery"},
	order.Delivered:      {"Delivered", "Delivered"},
	order.Cancelled:      {"Cancelled", "Cancel order"},
}

// statusName is a status as it reads in a sentence, such as "out for delivery".
func statusName(s order.Status) string {
	return strings.ReplaceAll(string(s), "_", " ")
}
