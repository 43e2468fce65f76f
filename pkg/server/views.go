package server

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/orderstream/orderstream/pkg/order"
)

// orderView is an order as the API serves it.
type orderView struct {
	ID           string            `json:"id"`
	CustomerName string            `json:"customer_name"`
	Phone        string            `json:"phone"`
	Fulfillment  order.Fulfillment `json:"fulfillment"`
	Address      *string           `json:"address"`
	Items        []order.Item      `json:"items"`
	TotalCents   int64             `json:"total_cents"`
	Status       order.Status      `json:"status"`
	Version      int64             `json:"version"`
	CreatedAt    string            `json:"created_at"`
	UpdatedAt    string            `json:"updated_at"`
	NextStatuses []order.Status    `json:"next_statuses"`
	TrackingURL  string            `json:"tracking_url"`
	EventsURL    string            `json:"events_url"`
}

func (s *Server) viewOrder(r *http.Request, o *order.Order) orderView {
	items := o.Items
	if items == nil {
		items = []order.Item{}
	}
	base := s.baseURL(r)
	return orderView{
		ID:           o.ID,
		CustomerName: o.CustomerName,
		Phone:        o.Phone,
		Fulfillment:  o.Fulfillment,
		Address:      o.Address,
		Items:        items,
		TotalCents:   o.TotalCents,
		Status:       o.Status,
		Version:      o.Version,
		CreatedAt:    order.FormatTime(o.CreatedAt),
		UpdatedAt:    order.FormatTime(o.UpdatedAt),
		NextStatuses: o.Next(),
		TrackingURL:  base + "/orders/" + o.ID,
		EventsURL:    base + "/api/orders/" + o.ID + "/events",
	}
}

// baseURL is the scheme and host that absolute links start with.
func (s *Server) baseURL(r *http.Request) string {
	if s.opts.PublicURL != "" {
		return strings.TrimRight(s.opts.PublicURL, "/")
	}
	scheme := "http"
	if r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https" {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// etag is the entity tag of an order: its version, which every change increments.
func etag(o *order.Order) string {
	return `"` + strconv.FormatInt(o.Version, 10) + `"`
}

// etagMatches reports whether an If-None-Match header names the tag (weak comparison).
func etagMatches(header, tag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == tag {
			return true
		}
	}
	return false
}

// versionFromIfMatch reads the version an If-Match header expects: ok is false when the
// header is absent or "*", and err set when it names no version of an order.
func versionFromIfMatch(header string) (v int64, ok bool, err error) {
	header = strings.TrimSpace(header)
	if header == "" || header == "*" {
		return 0, false, nil
	}
	unquoted, found := strings.CutPrefix(header, `"`)
	unquoted, closed := strings.CutSuffix(unquoted, `"`)
	if !found || !closed {
		return 0, true, errBadIfMatch
	}
	v, err = strconv.ParseInt(unquoted, 10, 64)
	if err != nil || v < 1 {
		return 0, true, errBadIfMatch
	}
	return v, true, nil
}
