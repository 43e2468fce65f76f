package server

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/pgtest"
)

// apiTimeout bounds anything a healthy server does at once.
const apiTimeout = 10 * time.Second

// uuidV4 matches a random (version 4, RFC 4122 variant) UUID in canonical form.
var uuidV4 = regexp.MustCompile(
	`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// unknownID is a well-formed order id that no test database holds.
const unknownID = "0b5f0d5e-8a31-4c1e-9d6b-3f2a7c9e1d40"

// leakMarks are things no error body may show: driver and SQL text, Go runtime traces,
// source file paths and network details.
var leakMarks = []string{"pq:", "sql", "runtime", "goroutine", ".go:", "panic",
	"dial tcp", "/work/", "/usr/", "/tmp/", "127.0.0.1:"}

// apiErrorJSON is the error body every API error answers with. Field, Allowed and
// CurrentVersion are pointers or raw so that a test can tell absent from empty.
type apiErrorJSON struct {
	Error struct {
		Code           string          `json:"code"`
		Message        string          `json:"message"`
		Field          *string         `json:"field"`
		Allowed        json.RawMessage `json:"allowed"`
		CurrentVersion *int64          `json:"current_version"`
	} `json:"error"`
}

// checkNoLeak fails the test when a response body shows internals.
func checkNoLeak(tb testing.TB, body []byte) {
	tb.Helper()
	lower := strings.ToLower(string(body))
	for _, mark := range leakMarks {
		if strings.Contains(lower, mark) {
			tb.Errorf("body leaks %q: %s", mark, body)
		}
	}
}

// checkError asserts what a client checks of an error answer: the status, a JSON
// content type, a body holding only the documented fields with the wanted code and a
// message, the extra fields only on the statuses that carry them, and no leak.
func checkError(tb testing.TB, resp *http.Response, body []byte, status int,
	code string) apiErrorJSON {
	tb.Helper()
	if resp.StatusCode != status {
		tb.Fatalf("status = %d, want %d; body %s", resp.StatusCode, status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		tb.Errorf("Content-Type = %q, want application/json", ct)
	}
	checkNoLeak(tb, body)

	var e apiErrorJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		tb.Fatalf("error body %s: %v", body, err)
	}
	d := e.Error
	if d.Code != code {
		tb.Errorf("error.code = %q, want %q; body %s", d.Code, code, body)
	}
	if strings.TrimSpace(d.Message) == "" {
		tb.Errorf("error.message is empty: %s", body)
	}
	if (d.Field != nil) != (status == http.StatusUnprocessableEntity) {
		tb.Errorf("error.field present = %v on a %d: %s", d.Field != nil, status, body)
	}
	if (d.Allowed != nil) != (status == http.StatusConflict) {
		tb.Errorf("error.allowed present = %v on a %d: %s", d.Allowed != nil, status, body)
	}
	if (d.CurrentVersion != nil) != (status == http.StatusPreconditionFailed) {
		tb.Errorf("error.current_version present = %v on a %d: %s",
			d.CurrentVersion != nil, status, body)
	}
	return e
}

// send is a request whose body, content type and length the test controls entirely:
// no Content-Type unless header sets one, and chunked encoding when chunked is true.
func (a *testApp) send(tb testing.TB, method, path, body string, chunked bool,
	header http.Header) (*http.Response, []byte) {
	tb.Helper()
	var rd io.Reader
	if body != "" || chunked {
		rd = strings.NewReader(body)
		if chunked {
			// A reader of unknown length makes the client send chunks.
			rd = io.MultiReader(rd)
		}
	}
	req, err := http.NewRequest(method, a.URL+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	if chunked && req.ContentLength != 0 {
		tb.Fatalf("request has Content-Length %d, want none", req.ContentLength)
	}
	return roundTrip(tb, req, header)
}

// withHeader returns h plus one more header.
func withHeader(h http.Header, key, value string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	out.Set(key, value)
	return out
}

// jsonType is the header of a JSON request body.
func jsonType() http.Header {
	return http.Header{"Content-Type": {"application/json"}}
}

// staffJSON is the header of a staff request with a JSON body.
func staffJSON() http.Header {
	return withHeader(staff(), "Content-Type", "application/json")
}

// newOrderBody is a valid request to place a delivery of two large margheritas.
func newOrderBody() map[string]any {
	return map[string]any{
		"customer_name": "Ada",
		"phone":         "+44 20 7946 0000",
		"fulfillment":   "delivery",
		"address":       "1 Main St",
		"items": []any{
			map[string]any{"pizza": "margherita", "size": "large", "quantity": 2},
		},
	}
}

// firstItem returns the first line of an order body built by newOrderBody.
func firstItem(body map[string]any) map[string]any {
	return body["items"].([]any)[0].(map[string]any)
}

// mustJSON encodes v.
func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(data)
}

// listOrders lists orders through the staff API and returns them.
func (a *testApp) listOrders(tb testing.TB, query string) []orderView {
	tb.Helper()
	resp, body := a.do(tb, "GET", "/api/orders"+query, nil, staff())
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("list orders%s: %d %s", query, resp.StatusCode, body)
	}
	var list struct {
		Orders []orderView `json:"orders"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		tb.Fatalf("list orders: %v: %s", err, body)
	}
	if list.Orders == nil {
		tb.Fatalf("list orders%s: orders is absent or null: %s", query, body)
	}
	return list.Orders
}

// getOrder fetches an order through the public API.
func (a *testApp) getOrder(tb testing.TB, id string) orderView {
	tb.Helper()
	resp, body := a.do(tb, "GET", "/api/orders/"+id, nil, nil)
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("get order %s: %d %s", id, resp.StatusCode, body)
	}
	var o orderView
	if err := json.Unmarshal(body, &o); err != nil {
		tb.Fatalf("get order: %v: %s", err, body)
	}
	return o
}

func TestAPIMenu(t *testing.T) {
	app := newTestApp(t)

	resp, body := app.do(t, "GET", "/api/menu", nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/menu: %d %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q", ct)
	}
	var menu struct {
		Pizzas []struct {
			ID          string           `json:"id"`
			Name        string           `json:"name"`
			Description string           `json:"description"`
			PricesCents map[string]int64 `json:"prices_cents"`
		} `json:"pizzas"`
		Sizes            []string `json:"sizes"`
		DeliveryFeeCents int64    `json:"delivery_fee_cents"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&menu); err != nil {
		t.Fatalf("menu %s: %v", body, err)
	}

	if want := []string{"small", "medium", "large"}; !slices.Equal(menu.Sizes, want) {
		t.Errorf("sizes = %v, want %v", menu.Sizes, want)
	}
	if menu.DeliveryFeeCents != 300 {
		t.Errorf("delivery_fee_cents = %d, want 300", menu.DeliveryFeeCents)
	}
	if len(menu.Pizzas) == 0 {
		t.Fatal("the menu has no pizzas")
	}
	seen := map[string]bool{}
	for _, p := range menu.Pizzas {
		if p.ID == "" || p.Name == "" || seen[p.ID] {
			t.Errorf("pizza %+v: empty or repeated id or name", p)
		}
		seen[p.ID] = true
		if len(p.PricesCents) != len(menu.Sizes) {
			t.Errorf("pizza %s has prices %v, want one per size %v",
				p.ID, p.PricesCents, menu.Sizes)
		}
		for _, size := range menu.Sizes {
			if p.PricesCents[size] <= 0 {
				t.Errorf("pizza %s has no price in size %s: %v", p.ID, size, p.PricesCents)
			}
		}
		if p.ID == "margherita" && p.PricesCents["large"] != 1500 {
			t.Errorf("large margherita costs %d, want 1500", p.PricesCents["large"])
		}
	}
	if !seen["margherita"] {
		t.Error("the menu has no margherita")
	}
}

func TestAPIPlaceOrder(t *testing.T) {
	app := newTestApp(t)

	tests := []struct {
		name        string
		body        func() map[string]any
		wantTotal   int64
		wantAddress *string
	}{
		{
			name:        "delivery",
			body:        newOrderBody,
			wantTotal:   2*1500 + 300,
			wantAddress: ptr("1 Main St"),
		},
		{
			name: "pickup without address",
			body: func() map[string]any {
				b := newOrderBody()
				b["fulfillment"] = "pickup"
				delete(b, "address")
				return b
			},
			wantTotal: 2 * 1500,
		},
		{
			name: "several lines",
			body: func() map[string]any {
				b := newOrderBody()
				b["items"] = []any{
					map[string]any{"pizza": "margherita", "size": "small", "quantity": 1},
					map[string]any{"pizza": "margherita", "size": "medium", "quantity": 3},
					map[string]any{"pizza": "margherita", "size": "large", "quantity": 20},
				}
				return b
			},
			wantTotal:   900 + 3*1200 + 20*1500 + 300,
			wantAddress: ptr("1 Main St"),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := app.do(t, "POST", "/api/orders", tt.body(), nil)
			if resp.StatusCode != http.StatusCreated {
				t.Fatalf("status = %d, want 201; body %s", resp.StatusCode, body)
			}
			var o orderView
			if err := json.Unmarshal(body, &o); err != nil {
				t.Fatalf("body %s: %v", body, err)
			}

			if !uuidV4.MatchString(o.ID) {
				t.Errorf("id = %q, want a random UUID", o.ID)
			}
			if loc := resp.Header.Get("Location"); loc != "/api/orders/"+o.ID {
				t.Errorf("Location = %q, want /api/orders/%s", loc, o.ID)
			}
			if o.TotalCents != tt.wantTotal {
				t.Errorf("total_cents = %d, want %d", o.TotalCents, tt.wantTotal)
			}
			if o.Status != order.Placed || o.Version != 1 {
				t.Errorf("status %s version %d, want placed version 1", o.Status, o.Version)
			}
			want := []order.Status{order.Preparing, order.Cancelled}
			if !slices.Equal(o.NextStatuses, want) {
				t.Errorf("next_statuses = %v, want %v", o.NextStatuses, want)
			}
			if (o.Address == nil) != (tt.wantAddress == nil) ||
				(o.Address != nil && *o.Address != *tt.wantAddress) {
				t.Errorf("address = %v, want %v", o.Address, tt.wantAddress)
			}
			if !strings.Contains(string(body), `"address":`) {
				t.Errorf("address is absent rather than null: %s", body)
			}
			if want := app.URL + "/orders/" + o.ID; o.TrackingURL != want {
				t.Errorf("tracking_url = %q, want %q", o.TrackingURL, want)
			}
			if want := app.URL + "/api/orders/" + o.ID + "/events"; o.EventsURL != want {
				t.Errorf("events_url = %q, want %q", o.EventsURL, want)
			}
			for _, ts := range []string{o.CreatedAt, o.UpdatedAt} {
				_, err := time.Parse(time.RFC3339Nano, ts)
				if err != nil || !strings.HasSuffix(ts, "Z") {
					t.Errorf("time %q is not RFC 3339 in UTC", ts)
				}
			}
			var sum int64
			for _, it := range o.Items {
				sum += it.UnitPriceCents * int64(it.Quantity)
			}
			if o.Fulfillment == order.Delivery {
				sum += 300
			}
			if sum != o.TotalCents {
				t.Errorf("items add up to %d, total_cents is %d", sum, o.TotalCents)
			}

			// The Location answers the same order.
			got := app.getOrder(t, o.ID)
			if got.ID != o.ID || got.TotalCents != o.TotalCents || got.Version != 1 ||
				len(got.Items) != len(o.Items) {
				t.Errorf("GET Location = %+v, want the order placed %+v", got, o)
			}
		})
	}

	// A trailing newline after the object (what curl -d @file sends) is fine.
	resp, body := app.send(t, "POST", "/api/orders", mustJSON(t, newOrderBody())+"\n", false,
		jsonType())
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("body with a trailing newline: %d %s", resp.StatusCode, body)
	}
}

func ptr[T any](v T) *T { return &v }

func TestAPIOrderETag(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	path := "/api/orders/" + o.ID

	resp, body := app.do(t, "GET", path, nil, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d %s", resp.StatusCode, body)
	}
	if tag := resp.Header.Get("ETag"); tag != `"1"` {
		t.Fatalf("ETag = %q, want \"1\"", tag)
	}

	tests := []struct {
		inm  string
		want int
	}{
		{`"1"`, http.StatusNotModified},
		{`W/"1"`, http.StatusNotModified},
		{`"7", "1"`, http.StatusNotModified},
		{`*`, http.StatusNotModified},
		{`"2"`, http.StatusOK},
		{`"0"`, http.StatusOK},
		{`1`, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.inm, func(t *testing.T) {
			resp, body := app.do(t, "GET", path, nil, http.Header{"If-None-Match": {tt.inm}})
			if resp.StatusCode != tt.want {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.want, body)
			}
			if tag := resp.Header.Get("ETag"); tag != `"1"` {
				t.Errorf("ETag = %q, want \"1\"", tag)
			}
			if tt.want == http.StatusNotModified && len(body) != 0 {
				t.Errorf("304 has a body: %q", body)
			}
			if tt.want == http.StatusOK && !bytes.Contains(body, []byte(o.ID)) {
				t.Errorf("200 without the order: %s", body)
			}
		})
	}

	// After a transition the old tag no longer matches.
	app.move(t, o.ID, order.Preparing)
	resp, body = app.do(t, "GET", path, nil, http.Header{"If-None-Match": {`"1"`}})
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") != `"2"` {
		t.Fatalf("old tag after a move: %d ETag %q, want 200 \"2\"", resp.StatusCode,
			resp.Header.Get("ETag"))
	}
	var got orderView
	if err := json.Unmarshal(body, &got); err != nil || got.Version != 2 ||
		got.Status != order.Preparing {
		t.Errorf("body after a move = %s (%v), want version 2 preparing", body, err)
	}
	resp, _ = app.do(t, "GET", path, nil, http.Header{"If-None-Match": {`"2"`}})
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("new tag: %d, want 304", resp.StatusCode)
	}
}

func TestAPIOrderList(t *testing.T) {
	app := newTestApp(t)

	if got := app.listOrders(t, ""); len(got) != 0 {
		t.Fatalf("empty database lists %d orders", len(got))
	}
	resp, body := app.do(t, "GET", "/api/orders", nil, staff())
	if strings.TrimSpace(string(body)) != `{"orders":[]}` {
		t.Errorf("empty list = %d %s, want {\"orders\":[]}", resp.StatusCode, body)
	}

	a := app.placeOrder(t, order.Delivery)
	b := app.placeOrder(t, order.Pickup)
	c := app.placeOrder(t, order.Delivery)
	app.move(t, b.ID, order.Preparing)
	app.move(t, c.ID, order.Cancelled)

	tests := []struct {
		query string
		want  []string
	}{
		{"", []string{c.ID, b.ID, a.ID}},
		{"?limit=2", []string{c.ID, b.ID}},
		{"?limit=500", []string{c.ID, b.ID, a.ID}},
		{"?status=placed", []string{a.ID}},
		{"?status=preparing", []string{b.ID}},
		{"?status=cancelled", []string{c.ID}},
		{"?status=delivered", []string{}},
		{"?status=open", []string{b.ID, a.ID}},
		{"?status=open&limit=1", []string{b.ID}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			orders := app.listOrders(t, tt.query)
			ids := make([]string, len(orders))
			for i, o := range orders {
				ids[i] = o.ID
				if o.TrackingURL == "" || o.EventsURL == "" || len(o.Items) == 0 {
					t.Errorf("listed order %s lacks links or items: %+v", o.ID, o)
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ids = %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestAPITransition(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Pickup)
	path := "/api/orders/" + o.ID + "/transitions"

	steps := []struct {
		status order.Status
		body   map[string]any
		header http.Header
		next   []order.Status
	}{
		{order.Preparing, map[string]any{"expected_version": 1}, nil,
			[]order.Status{order.Baking, order.Cancelled}},
		{order.Baking, map[string]any{"note": "in the oven"}, http.Header{"If-Match": {`"2"`}},
			[]order.Status{order.Ready, order.Cancelled}},
		{order.Ready, map[string]any{"expected_version": 3}, http.Header{"If-Match": {`"3"`}},
			[]order.Status{order.Delivered, order.Cancelled}},
		{order.Delivered, map[string]any{}, nil, []order.Status{}},
	}
	for i, st := range steps {
		t.Run(string(st.status), func(t *testing.T) {
			st.body["status"] = st.status
			header := staff()
			for k, v := range st.header {
				header[k] = v
			}
			resp, body := app.do(t, "POST", path, st.body, header)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", resp.StatusCode, body)
			}
			var got orderView
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			version := int64(i + 2)
			if got.Status != st.status || got.Version != version {
				t.Errorf("order = %s v%d, want %s v%d", got.Status, got.Version, st.status, version)
			}
			wantTag := strconv.Quote(strconv.FormatInt(version, 10))
			if tag := resp.Header.Get("ETag"); tag != wantTag {
				t.Errorf("ETag = %q, want \"%d\"", tag, version)
			}
			if !slices.Equal(got.NextStatuses, st.next) || got.NextStatuses == nil {
				t.Errorf("next_statuses = %#v, want %v", got.NextStatuses, st.next)
			}
		})
	}
	if got := app.getOrder(t, o.ID); got.Status != order.Delivered || got.Version != 5 {
		t.Errorf("order ends %s v%d, want delivered v5", got.Status, got.Version)
	}
}

func TestAPIBadRequest(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	transitions := "/api/orders/" + o.ID + "/transitions"

	valid := mustJSON(t, newOrderBody())
	withTotal := newOrderBody()
	withTotal["total_cents"] = 1
	withUnitPrice := newOrderBody()
	firstItem(withUnitPrice)["unit_price_cents"] = 1

	tests := []struct {
		name     string
		path     string
		body     string
		wantCode string
		wantText string // in the message, when set
	}{
		{"truncated", "/api/orders", valid[:len(valid)-1], "malformed_json", ""},
		{"not JSON", "/api/orders", "customer_name=Ada", "malformed_json", ""},
		{"trailing garbage", "/api/orders", valid + " x", "malformed_json", ""},
		{"two objects", "/api/orders", valid + valid, "malformed_json", ""},
		{"empty body", "/api/orders", "", "malformed_json", ""},
		{"array", "/api/orders", "[" + valid + "]", "malformed_json", ""},
		{"string", "/api/orders", `"order"`, "malformed_json", ""},
		{"null", "/api/orders", `null`, "malformed_json", ""},
		{"unknown field total_cents", "/api/orders", mustJSON(t, withTotal),
			"unknown_field", "total_cents"},
		{"unknown item field", "/api/orders", mustJSON(t, withUnitPrice),
			"unknown_field", "unit_price_cents"},
		{"transition unknown field", transitions, `{"status":"preparing","priority":1}`,
			"unknown_field", "priority"},
		{"transition malformed", transitions, `{"status":"preparing"`, "malformed_json", ""},
		{"transition trailing garbage", transitions, `{"status":"preparing"}]`,
			"malformed_json", ""},
		{"transition empty", transitions, "", "malformed_json", ""},
		{"transition array", transitions, `[{"status":"preparing"}]`, "malformed_json", ""},
		{"transition null", transitions, `null`, "malformed_json", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := app.send(t, "POST", tt.path, tt.body, false, staffJSON())
			e := checkError(t, resp, body, http.StatusBadRequest, tt.wantCode)
			if !strings.Contains(e.Error.Message, tt.wantText) {
				t.Errorf("message %q does not name %q", e.Error.Message, tt.wantText)
			}
		})
	}

	if n := len(app.listOrders(t, "?limit=500")); n != 1 {
		t.Errorf("%d orders stored, want only the fixture", n)
	}
	if got := app.getOrder(t, o.ID); got.Version != 1 {
		t.Errorf("refused transitions moved the order to version %d", got.Version)
	}
}

func TestAPIUnauthorized(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	transitions := "/api/orders/" + o.ID + "/transitions"
	move := `{"status":"preparing"}`

	routes := []struct {
		method, path, body string
	}{
		{"GET", "/api/orders", ""},
		{"POST", transitions, move},
		{"GET", "/api/events", ""},
	}
	creds := []struct {
		name string
		auth string // the Authorization header; empty for none
	}{
		{"none", ""},
		{"wrong token", "Bearer not-the-token"},
		{"prefix of the token", "Bearer " + testToken[:len(testToken)-1]},
		{"token and more", "Bearer " + testToken + "x"},
		{"empty bearer", "Bearer "},
		{"bare token", testToken},
		{"other scheme", "Token " + testToken},
		{"basic wrong password", basicAuth("staff", "nope")},
		{"basic token as user name", basicAuth(testToken, "")},
		{"basic prefix", basicAuth("staff", testToken[:4])},
	}
	for _, rt := range routes {
		for _, c := range creds {
			t.Run(rt.method+" "+rt.path+"/"+c.name, func(t *testing.T) {
				h := jsonType()
				if c.auth != "" {
					h.Set("Authorization", c.auth)
				}
				resp, body := app.send(t, rt.method, rt.path, rt.body, false, h)
				checkError(t, resp, body, http.StatusUnauthorized, "unauthorized")
				if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="orderstream"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
			})
		}
	}
	if got := app.getOrder(t, o.ID); got.Version != 1 {
		t.Fatalf("an unauthorized transition moved the order to version %d", got.Version)
	}

	// Both forms of the token are accepted on API routes.
	accepted := []struct {
		name string
		auth string
	}{
		{"bearer", "Bearer " + testToken},
		{"bearer lower case", "bearer " + testToken},
		{"basic", basicAuth("anyone", testToken)},
	}
	for _, c := range accepted {
		t.Run("accepted/"+c.name, func(t *testing.T) {
			resp, body := app.do(t, "GET", "/api/orders", nil,
				http.Header{"Authorization": {c.auth}})
			if resp.StatusCode != http.StatusOK {
				t.Errorf("list: %d %s", resp.StatusCode, body)
			}
		})
	}
	resp, body := app.do(t, "POST", transitions, map[string]any{"status": "preparing"},
		http.Header{"Authorization": {basicAuth("kitchen", testToken)}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("transition with Basic: %d %s", resp.StatusCode, body)
	}
}

// basicAuth is an HTTP Basic Authorization header value.
func basicAuth(user, password string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, password)
	return r.Header.Get("Authorization")
}

func TestAPINotFound(t *testing.T) {
	app := newTestApp(t)
	app.placeOrder(t, order.Delivery)
	move := `{"status":"preparing"}`

	tests := []struct {
		name, method, path, body string
	}{
		{"unknown order", "GET", "/api/orders/" + unknownID, ""},
		{"upper-case unknown order", "GET", "/api/orders/" + strings.ToUpper(unknownID), ""},
		{"malformed id", "GET", "/api/orders/not-a-uuid", ""},
		{"id with a quote", "GET", "/api/orders/x'%3B--", ""},
		{"unknown api path", "GET", "/api/nothing-here", ""},
		{"unknown sub-resource", "GET", "/api/orders/" + unknownID + "/nothing", ""},
		{"transition of unknown order", "POST", "/api/orders/" + unknownID + "/transitions", move},
		{"transition of malformed id", "POST", "/api/orders/42/transitions", move},
		{"events of unknown order", "GET", "/api/orders/" + unknownID + "/events", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := app.send(t, tt.method, tt.path, tt.body, false, staffJSON())
			checkError(t, resp, body, http.StatusNotFound, "not_found")
		})
	}
}

func TestAPIMethodNotAllowed(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)

	tests := []struct {
		method, path string
		allow        []string
	}{
		{"DELETE", "/api/menu", []string{"GET"}},
		{"POST", "/api/menu", []string{"GET"}},
		{"PUT", "/api/orders/" + o.ID, []string{"GET"}},
		{"DELETE", "/api/orders", []string{"GET", "POST"}},
		{"GET", "/api/orders/" + o.ID + "/transitions", []string{"POST"}},
		{"POST", "/api/orders/" + o.ID + "/events", []string{"GET"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := app.send(t, tt.method, tt.path, "", false, staff())
			checkError(t, resp, body, http.StatusMethodNotAllowed, "method_not_allowed")
			allow := strings.Split(resp.Header.Get("Allow"), ",")
			for i := range allow {
				allow[i] = strings.TrimSpace(allow[i])
			}
			for _, m := range tt.allow {
				if !slices.Contains(allow, m) {
					t.Errorf("Allow = %q, want it to list %s", resp.Header.Get("Allow"), m)
				}
			}
			if slices.Contains(allow, tt.method) {
				t.Errorf("Allow = %q lists the refused method", resp.Header.Get("Allow"))
			}
		})
	}
}

func TestAPIIllegalTransition(t *testing.T) {
	app := newTestApp(t)

	tests := []struct {
		name        string
		fulfillment order.Fulfillment
		before      []order.Status
		to          order.Status
		allowed     string // raw JSON of error.allowed
	}{
		{"placed to baking", order.Delivery, nil, order.Baking, `["preparing","cancelled"]`},
		{"placed to delivered", order.Delivery, nil, order.Delivered, `["preparing","cancelled"]`},
		{"placed to placed", order.Delivery, nil, order.Placed, `["preparing","cancelled"]`},
		{"backwards", order.Delivery, []order.Status{order.Preparing, order.Baking},
			order.Preparing, `["ready","cancelled"]`},
		{"delivery skips the driver", order.Delivery,
			[]order.Status{order.Preparing, order.Baking, order.Ready},
			order.Delivered, `["out_for_delivery","cancelled"]`},
		{"pickup never goes out for delivery", order.Pickup,
			[]order.Status{order.Preparing, order.Baking, order.Ready},
			order.OutForDelivery, `["delivered","cancelled"]`},
		{"cancelled is final", order.Delivery, []order.Status{order.Cancelled},
			order.Preparing, `[]`},
		{"cancelled twice", order.Pickup, []order.Status{order.Cancelled}, order.Cancelled, `[]`},
		{"delivered is final", order.Pickup,
			[]order.Status{order.Preparing, order.Baking, order.Ready, order.Delivered},
			order.Cancelled, `[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := app.placeOrder(t, tt.fulfillment)
			for _, st := range tt.before {
				app.move(t, o.ID, st)
			}
			version := int64(len(tt.before) + 1)

			resp, body := app.do(t, "POST", "/api/orders/"+o.ID+"/transitions",
				map[string]any{"status": tt.to, "expected_version": version}, staff())
			e := checkError(t, resp, body, http.StatusConflict, "illegal_transition")
			if got := string(e.Error.Allowed); got != tt.allowed {
				t.Errorf("allowed = %s, want %s", got, tt.allowed)
			}
			if got := app.getOrder(t, o.ID); got.Version != version {
				t.Errorf("a refused transition changed the version to %d", got.Version)
			}
		})
	}
}

func TestAPIStaleVersion(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	path := "/api/orders/" + o.ID + "/transitions"

	resp, body := app.do(t, "POST", path,
		map[string]any{"status": "preparing", "expected_version": 2}, staff())
	e := checkError(t, resp, body, http.StatusPreconditionFailed, "stale_version")
	if e.Error.CurrentVersion == nil || *e.Error.CurrentVersion != 1 {
		t.Errorf("current_version = %v, want 1: %s", e.Error.CurrentVersion, body)
	}

	app.move(t, o.ID, order.Preparing) // version 2

	tests := []struct {
		name    string
		body    map[string]any
		ifMatch string
	}{
		{"stale expected_version", map[string]any{"status": "baking", "expected_version": 1}, ""},
		{"future expected_version", map[string]any{"status": "baking", "expected_version": 3}, ""},
		{"stale If-Match", map[string]any{"status": "baking"}, `"1"`},
		{"stale and illegal", map[string]any{"status": "delivered", "expected_version": 1}, ""},
		{"stale If-Match and illegal", map[string]any{"status": "placed"}, `"1"`},
		{"stale and unknown status", map[string]any{"status": "eaten", "expected_version": 1}, ""},
		{"body and If-Match disagree",
			map[string]any{"status": "baking", "expected_version": 1}, `"2"`},
		{"If-Match and body disagree",
			map[string]any{"status": "baking", "expected_version": 2}, `"1"`},
		{"weak If-Match", map[string]any{"status": "baking"}, `W/"2"`},
		{"unquoted If-Match", map[string]any{"status": "baking"}, `2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := staff()
			if tt.ifMatch != "" {
				h.Set("If-Match", tt.ifMatch)
			}
			resp, body := app.do(t, "POST", path, tt.body, h)
			e := checkError(t, resp, body, http.StatusPreconditionFailed, "stale_version")
			if e.Error.CurrentVersion == nil || *e.Error.CurrentVersion != 2 {
				t.Errorf("current_version = %v, want 2: %s", e.Error.CurrentVersion, body)
			}
		})
	}
	if got := app.getOrder(t, o.ID); got.Version != 2 || got.Status != order.Preparing {
		t.Errorf("stale requests changed the order to %s v%d", got.Status, got.Version)
	}

	// The current version, by either means, is accepted.
	resp, body = app.do(t, "POST", path, map[string]any{"status": "baking"},
		withHeader(staff(), "If-Match", `"2"`))
	if resp.StatusCode != http.StatusOK {
		t.Errorf("If-Match of the current version: %d %s", resp.StatusCode, body)
	}
}

func TestAPIPayloadTooLarge(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	transitions := "/api/orders/" + o.ID + "/transitions"

	big := newOrderBody()
	big["customer_name"] = strings.Repeat("A", 70<<10)
	bigNote := mustJSON(t, map[string]any{"status": "preparing",
		"note": strings.Repeat("n", 70<<10)})

	tests := []struct {
		name    string
		path    string
		body    string
		chunked bool
	}{
		{"order", "/api/orders", mustJSON(t, big), false},
		{"order chunked", "/api/orders", mustJSON(t, big), true},
		{"transition", transitions, bigNote, false},
		{"transition chunked", transitions, bigNote, true},
		{"whitespace padding", "/api/orders",
			mustJSON(t, newOrderBody()) + strings.Repeat(" ", 65<<10), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := app.send(t, "POST", tt.path, tt.body, tt.chunked, staffJSON())
			checkError(t, resp, body, http.StatusRequestEntityTooLarge, "payload_too_large")
		})
	}

	// Just under the limit, the body is read and judged on its content.
	under := newOrderBody()
	under["customer_name"] = strings.Repeat("A", 60<<10)
	for _, chunked := range []bool{false, true} {
		resp, body := app.send(t, "POST", "/api/orders", mustJSON(t, under), chunked, jsonType())
		e := checkError(t, resp, body, http.StatusUnprocessableEntity, "invalid_field")
		if e.Error.Field == nil || *e.Error.Field != "customer_name" {
			t.Errorf("60 KiB name (chunked %v): field = %v", chunked, e.Error.Field)
		}
	}

	if n := len(app.listOrders(t, "?limit=500")); n != 1 {
		t.Errorf("%d orders stored, want only the fixture", n)
	}
	if got := app.getOrder(t, o.ID); got.Version != 1 {
		t.Errorf("a refused transition moved the order to version %d", got.Version)
	}
}

func TestAPIUnsupportedMediaType(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	transitions := "/api/orders/" + o.ID + "/transitions"
	orderJSON := mustJSON(t, newOrderBody())
	move := `{"status":"preparing"}`

	types := []struct {
		name, contentType string
	}{
		{"text/plain", "text/plain"},
		{"missing", ""},
		{"form", "application/x-www-form-urlencoded"},
		{"multipart", "multipart/form-data; boundary=x"},
		{"json prefix", "application/jsonx"},
		{"garbage", ";;;"},
	}
	for _, target := range []struct{ path, body string }{
		{"/api/orders", orderJSON},
		{transitions, move},
	} {
		for _, ct := range types {
			t.Run(target.path+"/"+ct.name, func(t *testing.T) {
				h := staff()
				if ct.contentType != "" {
					h.Set("Content-Type", ct.contentType)
				}
				resp, body := app.send(t, "POST", target.path, target.body, false, h)
				checkError(t, resp, body, http.StatusUnsupportedMediaType, "unsupported_media_type")
			})
		}
	}

	if n := len(app.listOrders(t, "?limit=500")); n != 1 {
		t.Errorf("%d orders stored, want only the fixture", n)
	}

	// JSON with parameters, in any case, is JSON.
	for _, ct := range []string{"application/json; charset=utf-8", "Application/JSON"} {
		resp, body := app.send(t, "POST", "/api/orders", orderJSON, false,
			http.Header{"Content-Type": {ct}})
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("Content-Type %q: %d %s", ct, resp.StatusCode, body)
		}
	}
}

func TestAPIInvalidField(t *testing.T) {
	app := newTestApp(t)

	lines := func(n int) []any {
		items := make([]any, n)
		for i := range items {
			items[i] = map[string]any{"pizza": "margherita", "size": "small", "quantity": 1}
		}
		return items
	}
	orderTests := []struct {
		name  string
		edit  func(b map[string]any)
		field string
	}{
		{"name missing", func(b map[string]any) { delete(b, "customer_name") }, "customer_name"},
		{"name blank", func(b map[string]any) { b["customer_name"] = "   " }, "customer_name"},
		{"name too long", func(b map[string]any) { b["customer_name"] = strings.Repeat("a", 101) },
			"customer_name"},
		{"name two lines", func(b map[string]any) { b["customer_name"] = "Ada\nLovelace" },
			"customer_name"},
		{"name a number", func(b map[string]any) { b["customer_name"] = 7 }, "customer_name"},
		{"phone missing", func(b map[string]any) { delete(b, "phone") }, "phone"},
		{"phone letters", func(b map[string]any) { b["phone"] = "call me" }, "phone"},
		{"phone short", func(b map[string]any) { b["phone"] = "12345" }, "phone"},
		{"fulfillment unknown", func(b map[string]any) { b["fulfillment"] = "drone" },
			"fulfillment"},
		{"fulfillment missing", func(b map[string]any) { delete(b, "fulfillment") }, "fulfillment"},
		{"address missing for delivery", func(b map[string]any) { delete(b, "address") },
			"address"},
		{"address null for delivery", func(b map[string]any) { b["address"] = nil }, "address"},
		{"address blank", func(b map[string]any) { b["address"] = " " }, "address"},
		{"address too long", func(b map[string]any) { b["address"] = strings.Repeat("x", 201) },
			"address"},
		{"items missing", func(b map[string]any) { delete(b, "items") }, "items"},
		{"items empty", func(b map[string]any) { b["items"] = []any{} }, "items"},
		{"51 lines", func(b map[string]any) { b["items"] = lines(51) }, "items"},
		{"items an object", func(b map[string]any) { b["items"] = map[string]any{} }, "items"},
		{"unknown pizza", func(b map[string]any) { firstItem(b)["pizza"] = "pineapple-crime" },
			"items[0].pizza"},
		{"unknown size", func(b map[string]any) { firstItem(b)["size"] = "huge" }, "items[0].size"},
		{"quantity 0", func(b map[string]any) { firstItem(b)["quantity"] = 0 },
			"items[0].quantity"},
		{"quantity 21", func(b map[string]any) { firstItem(b)["quantity"] = 21 },
			"items[0].quantity"},
		{"quantity negative", func(b map[string]any) { firstItem(b)["quantity"] = -1 },
			"items[0].quantity"},
		{"quantity missing", func(b map[string]any) { delete(firstItem(b), "quantity") },
			"items[0].quantity"},
		{"second line bad", func(b map[string]any) {
			b["items"] = append(lines(1), map[string]any{"pizza": "margherita", "size": "large",
				"quantity": 99})
		}, "items[1].quantity"},
		{"quantity a string", func(b map[string]any) { firstItem(b)["quantity"] = "2" },
			"items[0].quantity"},
		{"quantity a fraction", func(b map[string]any) { firstItem(b)["quantity"] = 1.5 },
			"items[0].quantity"},
		{"quantity of the second line a string", func(b map[string]any) {
			b["items"] = append(lines(1), map[string]any{"pizza": "margherita", "size": "large",
				"quantity": "3"})
		}, "items[1].quantity"},
	}
	for _, tt := range orderTests {
		t.Run("order/"+tt.name, func(t *testing.T) {
			b := newOrderBody()
			tt.edit(b)
			resp, body := app.do(t, "POST", "/api/orders", b, nil)
			e := checkError(t, resp, body, http.StatusUnprocessableEntity, "invalid_field")
			if e.Error.Field == nil || *e.Error.Field != tt.field {
				t.Errorf("field = %v, want %q; body %s", deref(e.Error.Field), tt.field, body)
			}
		})
	}
	if n := len(app.listOrders(t, "?limit=500")); n != 0 {
		t.Fatalf("%d orders stored after refused requests, want none", n)
	}

	o := app.placeOrder(t, order.Delivery)
	transitionTests := []struct {
		name  string
		body  string
		field string
	}{
		{"unknown status", `{"status":"eaten"}`, "status"},
		{"missing status", `{"note":"hi"}`, "status"},
		{"empty status", `{"status":""}`, "status"},
		{"status a number", `{"status":2}`, "status"},
		{"note too long", mustJSON(t, map[string]any{"status": "preparing",
			"note": strings.Repeat("n", 501)}), "note"},
		{"note with control characters", `{"status":"preparing","note":"a\u0007b"}`, "note"},
		{"expected_version 0", `{"status":"preparing","expected_version":0}`, "expected_version"},
		{"expected_version negative", `{"status":"preparing","expected_version":-1}`,
			"expected_version"},
		{"expected_version a string", `{"status":"preparing","expected_version":"1"}`,
			"expected_version"},
	}
	for _, tt := range transitionTests {
		t.Run("transition/"+tt.name, func(t *testing.T) {
			resp, body := app.send(t, "POST", "/api/orders/"+o.ID+"/transitions", tt.body, false,
				staffJSON())
			e := checkError(t, resp, body, http.StatusUnprocessableEntity, "invalid_field")
			if e.Error.Field == nil || *e.Error.Field != tt.field {
				t.Errorf("field = %v, want %q; body %s", deref(e.Error.Field), tt.field, body)
			}
		})
	}
	if got := app.getOrder(t, o.ID); got.Version != 1 {
		t.Errorf("refused transitions moved the order to version %d", got.Version)
	}

	listTests := []struct {
		query, field string
	}{
		{"?status=bogus", "status"},
		{"?status=PLACED", "status"},
		{"?limit=0", "limit"},
		{"?limit=-1", "limit"},
		{"?limit=abc", "limit"},
		{"?limit=501", "limit"},
		{"?limit=1.5", "limit"},
		{"?limit=99999999999999999999", "limit"},
	}
	for _, tt := range listTests {
		t.Run("list/"+tt.query, func(t *testing.T) {
			resp, body := app.do(t, "GET", "/api/orders"+tt.query, nil, staff())
			e := checkError(t, resp, body, http.StatusUnprocessableEntity, "invalid_field")
			if e.Error.Field == nil || *e.Error.Field != tt.field {
				t.Errorf("field = %v, want %q; body %s", deref(e.Error.Field), tt.field, body)
			}
		})
	}
}

func deref(s *string) string {
	if s == nil {
		return "<absent>"
	}
	return *s
}

// TestAPIDatabaseUnavailable makes the app's database refuse connections and ends the
// ones it has, then checks that the API answers 503 with Retry-After and leaks nothing,
// and that it recovers by itself once the database is back.
func TestAPIDatabaseUnavailable(t *testing.T) {
	app := newTestApp(t)
	o := app.placeOrder(t, order.Delivery)
	ctx := context.Background()

	var dbName string
	if err := app.DB.GetContext(ctx, &dbName, `SELECT current_database()`); err != nil {
		t.Fatal(err)
	}
	srv, err := pgtest.Shared()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sql.Open("postgres", srv.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	quoted := `"` + strings.ReplaceAll(dbName, `"`, `""`) + `"`
	allow := func(on bool) {
		t.Helper()
		q := fmt.Sprintf(`ALTER DATABASE %s ALLOW_CONNECTIONS %t`, quoted, on)
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// Cleanups run last first: connections come back before the app shuts down.
	t.Cleanup(func() { allow(true) })

	allow(false)
	const terminate = `
		SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = $1 AND pid <> pg_backend_pid()`
	if _, err := admin.ExecContext(ctx, terminate, dbName); err != nil {
		t.Fatal(err)
	}

	requests := []struct {
		name, method, path string
		body               any
		header             http.Header
	}{
		{"menu", "GET", "/api/menu", nil, nil},
		{"place order", "POST", "/api/orders", newOrderBody(), nil},
		{"get order", "GET", "/api/orders/" + o.ID, nil, nil},
		{"long poll", "GET", "/api/orders/" + o.ID + "?wait=1s", nil,
			http.Header{"If-None-Match": {`"1"`}}},
		{"list orders", "GET", "/api/orders", nil, staff()},
		{"transition", "POST", "/api/orders/" + o.ID + "/transitions",
			map[string]any{"status": "preparing"}, staff()},
		{"order events", "GET", "/api/orders/" + o.ID + "/events", nil, nil},
	}
	for _, rq := range requests {
		t.Run(rq.name, func(t *testing.T) {
			resp, body := app.do(t, rq.method, rq.path, rq.body, rq.header)
			checkError(t, resp, body, http.StatusServiceUnavailable, "unavailable")
			checkRetryAfter(t, resp)
			checkNoLeak(t, []byte(resp.Header.Get("Retry-After")))
		})
	}
	resp, body := app.do(t, "GET", "/readyz", nil, nil)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d %s, want 503", resp.StatusCode, body)
	}
	checkRetryAfter(t, resp)
	checkNoLeak(t, body)

	// Back without a restart.
	allow(true)
	waitFor(t, 30*time.Second, "the menu to answer again", func() bool {
		resp, _ := app.do(t, "GET", "/api/menu", nil, nil)
		return resp.StatusCode == http.StatusOK
	})
	waitFor(t, 30*time.Second, "/readyz to answer 200 again", func() bool {
		resp, _ := app.do(t, "GET", "/readyz", nil, nil)
		return resp.StatusCode == http.StatusOK
	})
	placed := app.placeOrder(t, order.Pickup)
	if got := app.getOrder(t, placed.ID); got.Version != 1 {
		t.Errorf("new order after recovery: %+v", got)
	}
	if got := app.move(t, o.ID, order.Preparing); got.Version != 2 {
		t.Errorf("transition after recovery: version %d", got.Version)
	}
}

// checkRetryAfter asserts a Retry-After of a whole number of seconds, at least one.
func checkRetryAfter(tb testing.TB, resp *http.Response) {
	tb.Helper()
	v := resp.Header.Get("Retry-After")
	if n, err := strconv.Atoi(v); err != nil || n < 1 {
		tb.Errorf("Retry-After = %q, want a number of seconds", v)
	}
}
