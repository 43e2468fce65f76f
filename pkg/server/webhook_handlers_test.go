package server

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/postgres"
	"github.com/orderstream/orderstream/pkg/webhook"
)

// webhookJSON is a subscription as the API answers it; pointers tell null from absent.
type webhookJSON struct {
	ID          string  `json:"id"`
	TargetURL   string  `json:"target_url"`
	OrderID     *string `json:"order_id"`
	CreatedAt   string  `json:"created_at"`
	Status      string  `json:"status"`
	EndedAt     *string `json:"ended_at"`
	EndedReason *string `json:"ended_reason"`
	Secret      *string `json:"secret"`
}

// newWebhookApp is a test app that also serves the webhook API, from a store on its
// database, with private targets allowed or not.
func newWebhookApp(tb testing.TB, allowPrivate bool) (*testApp, *postgres.WebhookStore) {
	tb.Helper()
	app := newTestApp(tb)
	store := postgres.NewWebhookStore(app.DB)

	opts := app.Server.opts
	opts.Webhooks, opts.AllowPrivateTargets = store, allowPrivate
	srv := httptest.NewServer(New(app.Store, opts))
	tb.Cleanup(srv.Close)
	app.URL = srv.URL
	return app, store
}

// subscribe creates a subscription through the API and fails the test unless it is
// created.
func (a *testApp) subscribe(tb testing.TB, body map[string]any) webhookJSON {
	tb.Helper()
	resp, data := a.do(tb, "POST", "/api/webhooks", body, staff())
	if resp.StatusCode != http.StatusCreated {
		tb.Fatalf("subscribe: %d %s", resp.StatusCode, data)
	}
	var w webhookJSON
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		tb.Fatalf("subscribe answer %s: %v", data, err)
	}
	if got, want := resp.Header.Get("Location"), "/api/webhooks/"+w.ID; got != want {
		tb.Errorf("Location = %q, want %q", got, want)
	}
	return w
}

// listWebhooks lists the subscriptions through the API.
func (a *testApp) listWebhooks(tb testing.TB) ([]webhookJSON, []byte) {
	tb.Helper()
	resp, data := a.do(tb, "GET", "/api/webhooks", nil, staff())
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("list webhooks: %d %s", resp.StatusCode, data)
	}
	var list struct {
		Webhooks []webhookJSON `json:"webhooks"`
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		tb.Fatalf("list answer %s: %v", data, err)
	}
	if list.Webhooks == nil {
		tb.Fatalf("list answer %s lacks the webhooks array", data)
	}
	return list.Webhooks, data
}

func TestAPIWebhooks(t *testing.T) {
	t.Parallel()
	app, _ := newWebhookApp(t, true)
	o := app.placeOrder(t, order.Pickup)

	all := app.subscribe(t, map[string]any{"target_url": "http://127.0.0.1:9/all"})
	one := app.subscribe(t, map[string]any{
		"target_url": "https://hooks.example.com/one?k=v", "order_id": o.ID,
	})

	for _, w := range []webhookJSON{all, one} {
		if !uuidV4.MatchString(w.ID) {
			t.Errorf("id %q is not a random UUID", w.ID)
		}
		if _, err := time.Parse(order.TimeFormat, w.CreatedAt); err != nil ||
			!strings.HasSuffix(w.CreatedAt, "Z") {
			t.Errorf("created_at %q is not a UTC time in the API's format", w.CreatedAt)
		}
		if w.Status != "active" || w.EndedAt != nil || w.EndedReason != nil {
			t.Errorf("new subscription %+v is not active", w)
		}
		raw, ok := strings.CutPrefix(deref(w.Secret), "whsec_")
		key, err := base64.StdEncoding.DecodeString(raw)
		if !ok || err != nil || len(key) != 32 {
			t.Errorf("secret %q is not whsec_ and the base64 of 32 bytes", deref(w.Secret))
		}
	}
	if all.OrderID != nil || all.TargetURL != "http://127.0.0.1:9/all" {
		t.Errorf("global subscription %+v, want order_id null", all)
	}
	if deref(one.OrderID) != o.ID || one.TargetURL != "https://hooks.example.com/one?k=v" {
		t.Errorf("order subscription %+v, want order_id %s", one, o.ID)
	}
	if deref(all.Secret) == deref(one.Secret) {
		t.Error("two subscriptions share a secret")
	}

	// The list shows both, oldest first, and no secret.
	list, data := app.listWebhooks(t)
	if len(list) != 2 || list[0].ID != all.ID || list[1].ID != one.ID {
		t.Fatalf("list %s, want %s then %s", data, all.ID, one.ID)
	}
	if strings.Contains(string(data), "secret") || strings.Contains(string(data), "whsec_") {
		t.Errorf("the list shows secrets: %s", data)
	}
	if list[0].CreatedAt != all.CreatedAt || deref(list[1].OrderID) != o.ID {
		t.Errorf("list %s does not match what was created", data)
	}

	resp, body := app.do(t, "DELETE", "/api/webhooks/"+all.ID, nil, staff())
	if resp.StatusCode != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("delete: %d %q, want 204 and no body", resp.StatusCode, body)
	}
	if list, data := app.listWebhooks(t); len(list) != 1 || list[0].ID != one.ID {
		t.Errorf("after the delete the list is %s, want only %s", data, one.ID)
	}
	for _, id := range []string{all.ID, unknownID, "nope", "%20"} {
		resp, body := app.do(t, "DELETE", "/api/webhooks/"+id, nil, staff())
		checkError(t, resp, body, http.StatusNotFound, "not_found")
	}
}

func TestAPIWebhooksUnauthorized(t *testing.T) {
	t.Parallel()
	app, _ := newWebhookApp(t, true)
	routes := []struct {
		method, path, body string
	}{
		{"POST", "/api/webhooks", `{"target_url":"http://127.0.0.1:9/"}`},
		{"GET", "/api/webhooks", ""},
		{"DELETE", "/api/webhooks/" + unknownID, ""},
	}
	for _, rt := range routes {
		for _, auth := range []string{"", "Bearer wrong", basicAuth("staff", "wrong")} {
			h := jsonType()
			if auth != "" {
				h.Set("Authorization", auth)
			}
			resp, body := app.send(t, rt.method, rt.path, rt.body, false, h)
			checkError(t, resp, body, http.StatusUnauthorized, "unauthorized")
			if got := resp.Header.Get("WWW-Authenticate"); got != `Bearer realm="orderstream"` {
				t.Errorf("%s %s: WWW-Authenticate = %q", rt.method, rt.path, got)
			}
		}
	}
	if list, data := app.listWebhooks(t); len(list) != 0 {
		t.Errorf("an unauthorized request subscribed: %s", data)
	}

	// HTTP Basic with the token works here as on every staff route.
	resp, body := app.do(t, "GET", "/api/webhooks", nil,
		http.Header{"Authorization": {basicAuth("anyone", testToken)}})
	if resp.StatusCode != http.StatusOK {
		t.Errorf("list with Basic: %d %s", resp.StatusCode, body)
	}
}

func TestAPIWebhooksInvalid(t *testing.T) {
	t.Parallel()
	app, _ := newWebhookApp(t, false)
	o := app.placeOrder(t, order.Pickup)
	const public = "https://93.184.216.34/hook"

	tests := []struct {
		name   string
		body   string
		header http.Header
		status int
		code   string
		field  string
	}{
		{"no target", `{}`, nil, 422, "invalid_field", "target_url"},
		{"empty target", `{"target_url":""}`, nil, 422, "invalid_field", "target_url"},
		{"target not a string", `{"target_url":5}`, nil, 422, "invalid_field", "target_url"},
		{"ftp", `{"target_url":"ftp://example.com/"}`, nil, 422, "invalid_field", "target_url"},
		{"relative", `{"target_url":"/hook"}`, nil, 422, "invalid_field", "target_url"},
		{"user info", `{"target_url":"http://user:pw@example.com/"}`, nil, 422,
			"invalid_field", "target_url"},
		{"loopback", `{"target_url":"http://127.0.0.1/"}`, nil, 422, "invalid_field", "target_url"},
		{"private", `{"target_url":"http://10.0.0.1/"}`, nil, 422, "invalid_field", "target_url"},
		{"link-local", `{"target_url":"http://169.254.169.254/"}`, nil, 422,
			"invalid_field", "target_url"},
		{"ipv6 loopback", `{"target_url":"http://[::1]:8080/"}`, nil, 422,
			"invalid_field", "target_url"},
		{"localhost", `{"target_url":"http://localhost:8080/"}`, nil, 422,
			"invalid_field", "target_url"},
		{"unknown order", `{"target_url":"` + public + `","order_id":"` + unknownID + `"}`, nil,
			422, "invalid_field", "order_id"},
		{"malformed order", `{"target_url":"` + public + `","order_id":"nope"}`, nil, 422,
			"invalid_field", "order_id"},
		{"empty order", `{"target_url":"` + public + `","order_id":""}`, nil, 422,
			"invalid_field", "order_id"},
		{"order not a string", `{"target_url":"` + public + `","order_id":7}`, nil, 422,
			"invalid_field", "order_id"},
		{"unknown field", `{"target_url":"` + public + `","secret":"whsec_x"}`, nil, 400,
			"unknown_field", ""},
		{"malformed", `{"target_url":`, nil, 400, "malformed_json", ""},
		{"two values", `{"target_url":"` + public + `"}{}`, nil, 400, "malformed_json", ""},
		{"not json", `target_url=` + public, withHeader(staff(), "Content-Type", "text/plain"),
			415, "unsupported_media_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = staffJSON()
			}
			resp, body := app.send(t, "POST", "/api/webhooks", tt.body, false, h)
			e := checkError(t, resp, body, tt.status, tt.code)
			if tt.field != "" && deref(e.Error.Field) != tt.field {
				t.Errorf("field = %q, want %q", deref(e.Error.Field), tt.field)
			}
		})
	}
	if list, data := app.listWebhooks(t); len(list) != 0 {
		t.Errorf("a refused request subscribed: %s", data)
	}

	// A public target with a known order is fine even when private targets are not.
	w := app.subscribe(t, map[string]any{"target_url": public, "order_id": o.ID})
	if deref(w.OrderID) != o.ID {
		t.Errorf("subscribed %+v", w)
	}
}

// TestAPIWebhookDelivered follows a subscription made through the API to a delivery
// signed with the secret the API showed.
func TestAPIWebhookDelivered(t *testing.T) {
	t.Parallel()
	app, store := newWebhookApp(t, true)

	var (
		mu     sync.Mutex
		secret string
		got    []string
		sigs   []bool
	)
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(body))
		sigs = append(sigs, signedWith(secret, r.Header, body))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(target.Close)

	o := app.placeOrder(t, order.Delivery)
	w := app.subscribe(t, map[string]any{"target_url": target.URL, "order_id": o.ID})
	mu.Lock()
	secret = deref(w.Secret)
	mu.Unlock()

	d := webhook.NewDispatcher(store, webhook.Options{AllowPrivateTargets: true,
		PollInterval: 50 * time.Millisecond}, app.Server.logger, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	app.move(t, o.ID, order.Preparing)
	app.move(t, o.ID, order.Cancelled)
	waitFor(t, apiTimeout, "two deliveries", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2
	})

	mu.Lock()
	defer mu.Unlock()
	for i, want := range []string{"preparing", "cancelled"} {
		var p struct {
			Type string `json:"type"`
			Data struct {
				OrderID string `json:"order_id"`
				Version int64  `json:"version"`
				Status  string `json:"status"`
			} `json:"data"`
		}
		if err := json.Unmarshal([]byte(got[i]), &p); err != nil {
			t.Fatalf("delivery %s: %v", got[i], err)
		}
		if p.Type != "order.status" || p.Data.OrderID != o.ID || p.Data.Status != want ||
			p.Data.Version != int64(i+2) {
			t.Errorf("delivery %d = %s, want %s at version %d", i, got[i], want, i+2)
		}
		if !sigs[i] {
			t.Errorf("delivery %d is not signed with the secret the API showed", i)
		}
	}
}

// signedWith reports whether a request carries a Standard Webhooks signature made
// with secret.
func signedWith(secret string, h http.Header, body []byte) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%s.%s", h.Get("webhook-id"), h.Get("webhook-timestamp"), body)
	want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(h.Get("webhook-signature")), []byte(want))
}
