package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/static"
)

// basicStaff is what a browser sends once someone signed in to the board.
func basicStaff() http.Header {
	h := http.Header{}
	r := &http.Request{Header: h}
	r.SetBasicAuth("kitchen", testToken)
	return h
}

// postForm posts a form as a browser does and returns the answer without following
// redirects.
func (a *testApp) postForm(t *testing.T, path string, form url.Values, header http.Header) (
	*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest("POST", a.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for k, v := range header {
		req.Header[k] = v
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func headerWith(h http.Header, kv ...string) http.Header {
	h = h.Clone()
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

func TestPageHeaders(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	tests := []struct {
		path        string
		header      http.Header
		status      int
		contentType string
	}{
		{"/", nil, 200, "text/html; charset=utf-8"},
		{"/orders/" + o.ID, nil, 200, "text/html; charset=utf-8"},
		{"/orders/not-an-order", nil, 404, "text/html; charset=utf-8"},
		{"/orders/0b7e3f5c-4d1a-4c8e-9f2b-6a5d4c3b2a10", nil, 404, "text/html; charset=utf-8"},
		{"/static/site.css", nil, 200, "text/css; charset=utf-8"},
		{"/static/track.js", nil, 200, "text/javascript; charset=utf-8"},
		{"/static/logo.svg", nil, 200, "image/svg+xml"},
		{"/staff", basicStaff(), 200, "text/html; charset=utf-8"},
		{"/staff/orders/" + o.ID + "/card", basicStaff(), 200, "text/html; charset=utf-8"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := app.do(t, "GET", tt.path, nil, tt.header)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			want := map[string]string{
				"Content-Type":            tt.contentType,
				"Content-Security-Policy": contentSecurityPolicy,
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "same-origin",
				"Cache-Control":           "no-cache",
			}
			for k, v := range want {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPageRevalidation(t *testing.T) {
	app := newTestApp(t)
	for _, path := range []string{"/", "/static/site.css", "/static/staff.js"} {
		resp, _ := app.do(t, "GET", path, nil, nil)
		tag := resp.Header.Get("ETag")
		if tag == "" {
			t.Errorf("GET %s has no ETag", path)
			continue
		}
		resp, _ = app.do(t, "GET", path, nil, http.Header{"If-None-Match": {tag}})
		if resp.StatusCode != http.StatusNotModified {
			t.Errorf("GET %s with If-None-Match %s: %d, want 304", path, tag, resp.StatusCode)
		}
	}
}

// The pages must work offline and under the Content-Security-Policy: nothing from
// another origin, no inline script or style, no event handler attributes.
func TestPagesSelfContained(t *testing.T) {
	forbidden := []struct {
		what string
		re   *regexp.Regexp
	}{
		{"a URL of another origin", regexp.MustCompile(`(?i)(src|href|action)\s*=\s*"(https?:)?//`)},
		{"an inline script", regexp.MustCompile(`(?i)<script(\s[^>]*)?>\s*[^<\s]`)},
		{"a style attribute", regexp.MustCompile(`(?i)\sstyle\s*=`)},
		{"a style element", regexp.MustCompile(`(?i)<style`)},
		{"an event handler attribute", regexp.MustCompile(`(?i)\son[a-z]+\s*=`)},
		{"an @import or url() of another origin",
			regexp.MustCompile(`(?i)(@import|url\()\s*["']?(https?:)?//`)},
	}
	err := fs.WalkDir(static.FS, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if !strings.HasSuffix(path, ".html") && !strings.HasSuffix(path, ".css") {
			return nil
		}
		b, err := fs.ReadFile(static.FS, path)
		if err != nil {
			return err
		}
		for _, f := range forbidden {
			if loc := f.re.FindIndex(b); loc != nil {
				t.Errorf("%s holds %s: %q", path, f.what, b[loc[0]:min(loc[1]+40, len(b))])
			}
		}
		for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAll(b, -1) {
			if !strings.Contains(string(tag), ` src="/static/`) {
				t.Errorf("%s has a script not loaded from /static/: %s", path, tag)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Every form control of the pages has a label.
func TestPagesLabelEveryField(t *testing.T) {
	control := regexp.MustCompile(`(?is)<(input|select|textarea)\b[^>]*>`)
	for _, path := range []string{"pages/index.html", "pages/order.html", "templates/staff.html"} {
		b, err := fs.ReadFile(static.FS, path)
		if err != nil {
			t.Fatal(err)
		}
		page := string(b)
		for _, m := range control.FindAllStringIndex(page, -1) {
			tag := page[m[0]:m[1]]
			if strings.Contains(tag, `type="hidden"`) {
				continue
			}
			id := regexp.MustCompile(`\bid="([^"]+)"`).FindStringSubmatch(tag)
			labelled := id != nil && strings.Contains(page, `for="`+id[1]+`"`)
			// Otherwise the control sits inside its label.
			open := strings.LastIndex(page[:m[0]], "<label")
			if open >= 0 && !strings.Contains(page[open:m[0]], "</label>") {
				labelled = true
			}
			if !labelled {
				t.Errorf("%s: %s has no label", path, tag)
			}
		}
	}
}

func TestPageStaffAuth(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)

	wrong := http.Header{}
	(&http.Request{Header: wrong}).SetBasicAuth("kitchen", "not-the-token")
	paths := []string{"/staff", "/staff/events", "/staff/orders/" + o.ID,
		"/staff/orders/" + o.ID + "/card"}
	for _, path := range paths {
		for name, header := range map[string]http.Header{"none": nil, "wrong": wrong} {
			resp, _ := app.do(t, "GET", path, nil, header)
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("GET %s with %s credentials: %d, want 401", path, name, resp.StatusCode)
			}
			got, want := resp.Header.Get("WWW-Authenticate"), `Basic realm="orderstream staff"`
			if got != want {
				t.Errorf("GET %s: WWW-Authenticate %q, want %q", path, got, want)
			}
		}
	}

	resp, _ := app.postForm(t, "/staff/orders/"+o.ID+"/transitions",
		url.Values{"status": {"preparing"}}, nil)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("form post without credentials: %d, want 401", resp.StatusCode)
	}
	if got, _ := app.Store.FindOrderByID(context.Background(), o.ID); got.Version != 1 {
		t.Errorf("an unauthenticated post moved the order to version %d", got.Version)
	}
}

func TestPageBoardFormPost(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	app.move(t, o.ID, order.Preparing) // now version 2

	path := "/staff/orders/" + o.ID + "/transitions"
	tests := []struct {
		name     string
		id       string
		form     url.Values
		query    url.Values // of the redirect, without order
		jsonCode int
		jsonErr  string
	}{
		{"illegal", o.ID, url.Values{"status": {"delivered"}, "expected_version": {"2"}},
			url.Values{"result": {"illegal"}, "to": {"delivered"}}, 409, "illegal_transition"},
		{"stale", o.ID, url.Values{"status": {"baking"}, "expected_version": {"1"}},
			url.Values{"result": {"stale"}}, 412, "stale_version"},
		{"long note", o.ID, url.Values{"status": {"baking"}, "note": {strings.Repeat("x", 501)}},
			url.Values{"result": {"invalid"}, "field": {"note"}}, 422, "invalid_field"},
		{"no status", o.ID, url.Values{"note": {"hello"}},
			url.Values{"result": {"invalid"}, "field": {"status"}}, 422, "invalid_field"},
		{"bad version", o.ID, url.Values{"status": {"baking"}, "expected_version": {"two"}},
			url.Values{"result": {"invalid"}, "field": {"expected_version"}}, 422, "invalid_field"},
		{"unknown order", "0b7e3f5c-4d1a-4c8e-9f2b-6a5d4c3b2a10",
			url.Values{"status": {"baking"}}, url.Values{"result": {"not_found"}}, 404, "not_found"},
		{"moved", o.ID, url.Values{"status": {"baking"}, "note": {"Extra basil"},
			"expected_version": {"2"}}, url.Values{"result": {"moved"}, "to": {"baking"}}, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := strings.Replace(path, o.ID, tt.id, 1)
			if tt.jsonCode != 0 {
				resp, body := app.postForm(t, p, tt.form,
					headerWith(basicStaff(), "Accept", "application/json"))
				var e errorBody
				if err := json.Unmarshal([]byte(body), &e); err != nil || resp.StatusCode != tt.jsonCode ||
					e.Error.Code != tt.jsonErr {
					t.Errorf("with Accept: application/json: %d %s, want %d %s",
						resp.StatusCode, body, tt.jsonCode, tt.jsonErr)
				}
			}

			resp, body := app.postForm(t, p, tt.form, basicStaff())
			if resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("status %d, want 303: %s", resp.StatusCode, body)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			want := tt.query
			want.Set("order", tt.id)
			if loc.Path != "/staff" || loc.Fragment != "order-"+tt.id {
				t.Errorf("Location %s, want /staff?…#order-%s", loc, tt.id)
			}
			if diff := cmp.Diff(want, loc.Query()); diff != "" {
				t.Errorf("Location query (-want +got):\n%s", diff)
			}
		})
	}

	events, err := app.Store.FindEvents(context.Background(), o.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 || events[2].Status != order.Baking || events[2].Note != "Extra basil" {
		t.Errorf("events = %+v, want placed, preparing, baking with its note", events)
	}
}

func TestPageBoardFormPostJSON(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	resp, body := app.postForm(t, "/staff/orders/"+o.ID+"/transitions",
		url.Values{"status": {"preparing"}, "expected_version": {"1"}},
		headerWith(basicStaff(), "Accept", "application/json"))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, body)
	}
	var got orderView
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	want := []order.Status{order.Baking, order.Cancelled}
	if got.Status != order.Preparing || got.Version != 2 || !cmp.Equal(want, got.NextStatuses) {
		t.Errorf("answer %s v%d next %v, want preparing v2 next %v",
			got.Status, got.Version, got.NextStatuses, want)
	}
	if tag := resp.Header.Get("ETag"); tag != `"2"` {
		t.Errorf("ETag %s, want \"2\"", tag)
	}
}

func TestPageBoardCrossOrigin(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	path := "/staff/orders/" + o.ID + "/transitions"
	form := url.Values{"status": {"cancelled"}, "expected_version": {"1"}}

	tests := []struct {
		name   string
		header http.Header
	}{
		{"cross-site fetch metadata", headerWith(basicStaff(), "Sec-Fetch-Site", "cross-site")},
		{"same-site fetch metadata", headerWith(basicStaff(), "Sec-Fetch-Site", "same-site")},
		{"foreign origin", headerWith(basicStaff(), "Origin", "http://evil.example")},
		{"foreign origin, JSON", headerWith(basicStaff(), "Origin", "https://evil.example",
			"Accept", "application/json")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := app.postForm(t, path, form, tt.header)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403: %s", resp.StatusCode, body)
			}
		})
	}
	got, err := app.Store.FindOrderByID(context.Background(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 {
		t.Fatalf("refused posts moved the order to %s v%d", got.Status, got.Version)
	}

	// The board's own posts pass.
	host := strings.TrimPrefix(app.URL, "http://")
	for i, h := range []http.Header{
		headerWith(basicStaff(), "Sec-Fetch-Site", "same-origin", "Origin", app.URL),
		headerWith(basicStaff(), "Origin", "http://"+host),
	} {
		status := []string{"preparing", "baking"}[i]
		f := url.Values{"status": {status}, "expected_version": {strconv.Itoa(i + 1)}}
		resp, body := app.postForm(t, path, f, h)
		if resp.StatusCode != http.StatusSeeOther {
			t.Errorf("same-origin post %d: %d, want 303: %s", i, resp.StatusCode, body)
		}
	}
}

func TestPageBoard(t *testing.T) {
	app := newTestApp(t)
	placed := app.placeOrder(t, order.Delivery)
	baking := app.placeOrder(t, order.Pickup)
	app.move(t, baking.ID, order.Preparing)
	app.move(t, baking.ID, order.Baking)
	done := app.placeOrder(t, order.Pickup)
	app.move(t, done.ID, order.Cancelled)

	resp, page := app.do(t, "GET", "/staff", nil, basicStaff())
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /staff: %d", resp.StatusCode)
	}
	body := string(page)
	for _, status := range order.Statuses {
		if !strings.Contains(body, `data-column="`+string(status)+`"`) {
			t.Errorf("the board has no column for %s", status)
		}
	}
	cards := map[string]struct {
		column  order.Status
		buttons []string
	}{
		placed.ID: {order.Placed, []string{"preparing", "cancelled"}},
		baking.ID: {order.Baking, []string{"ready", "cancelled"}},
		done.ID:   {order.Cancelled, nil},
	}
	for id, want := range cards {
		card := cardHTML(t, body, id)
		if !strings.Contains(card, `data-status="`+string(want.column)+`"`) {
			t.Errorf("card %s is not in %s: %s", id, want.column, card)
		}
		if diff := cmp.Diff(want.buttons, buttonsOf(card)); diff != "" {
			t.Errorf("buttons of card %s (-want +got):\n%s", id, diff)
		}
		if !strings.Contains(card, `name="expected_version" value="`) && want.buttons != nil {
			t.Errorf("card %s has no expected_version", id)
		}
	}

	// The card alone, for the board's script.
	_, fragment := app.do(t, "GET", "/staff/orders/"+baking.ID+"/card", nil, basicStaff())
	if card := string(fragment); !strings.HasPrefix(card, "<li") ||
		!strings.Contains(card, `data-version="3"`) {
		t.Errorf("card fragment = %s", card)
	}
}

// cardHTML cuts an order's card out of a board page.
func cardHTML(t *testing.T, page, id string) string {
	t.Helper()
	start := strings.Index(page, `<li class="card order-card" id="order-`+id+`"`)
	if start < 0 {
		t.Fatalf("no card for %s on the board", id)
	}
	// The card's own closing tag starts a line; its items' are indented.
	end := strings.Index(page[start:], "\n</li>")
	if end < 0 {
		t.Fatalf("card %s does not end", id)
	}
	return page[start : start+end]
}

func buttonsOf(card string) []string {
	var statuses []string
	button := regexp.MustCompile(`<button[^>]*name="status" value="([a-z_]+)"`)
	for _, m := range button.FindAllStringSubmatch(card, -1) {
		statuses = append(statuses, m[1])
	}
	return statuses
}

func TestPageBoardMessages(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	app.move(t, o.ID, order.Preparing)
	short := shortID(o.ID)

	tests := []struct {
		query string
		want  string
	}{
		{"result=moved&to=preparing", "Order #" + short + " moved to preparing."},
		{"result=stale", "Order #" + short + " was already moved to preparing by someone else; " +
			"the board shows its current state."},
		{"result=illegal&to=delivered", "Order #" + short + " can no longer be moved that way: " +
			"it is preparing now."},
		{"result=invalid&field=note", fmt.Sprintf("Order #%s was not moved: a note may have at "+
			"most %d characters.", short, order.MaxNoteLength)},
		{"result=moved&to=<script>", "Order #" + short + " moved."},
		{"result=nonsense", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			_, page := app.do(t, "GET", "/staff?order="+o.ID+"&"+tt.query, nil, basicStaff())
			m := messageArea.FindStringSubmatch(string(page))
			if m == nil {
				t.Fatal("no message area on the board")
			}
			if m[1] != htmlEscape(tt.want) {
				t.Errorf("message %q, want %q", m[1], tt.want)
			}
		})
	}
}

// messageArea finds the board's banner, if any.
var messageArea = regexp.MustCompile(
	`(?s)<div class="board-messages" id="board-messages">\s*(?:<p[^>]*>(.*?)</p>)?`)

func htmlEscape(s string) string {
	return strings.NewReplacer("'", "&#39;", `"`, "&#34;", "<", "&lt;", ">", "&gt;").Replace(s)
}
