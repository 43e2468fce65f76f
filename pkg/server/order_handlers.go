package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/orderstream/orderstream/pkg/order"
)

// maxWait caps a long poll.
const maxWait = 60 * time.Second

var errBadIfMatch = &apiError{status: http.StatusPreconditionFailed, code: "stale_version",
	message: "If-Match must name a version of the order, such as \"3\""}

func (s *Server) handleMenu(w http.ResponseWriter, r *http.Request) {
	menu, err := s.store.Menu(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, menu)
}

func (s *Server) handleOrderCreate(w http.ResponseWriter, r *http.Request) {
	var raw newOrderRequest
	if err := decodeJSON(w, r, &raw); err != nil {
		s.writeError(w, r, err)
		return
	}
	req, err := raw.decode()
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	o, _, err := s.store.CreateOrder(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	s.logger.Info("Order placed", "order_id", o.ID, "fulfillment", o.Fulfillment,
		"total_cents", o.TotalCents)
	w.Header().Set("Location", "/api/orders/"+o.ID)
	w.Header().Set("ETag", etag(o))
	writeJSON(w, http.StatusCreated, s.viewOrder(r, o))
}

// handleOrderGet answers the order, 304 to a matching If-None-Match, and holds a long
// poll (?wait=) until the order changes or the wait ends.
func (s *Server) handleOrderGet(w http.ResponseWriter, r *http.Request) {
	wait, err := parseWait(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id := r.PathValue("id")
	inm := r.Header.Get("If-None-Match")

	var o *order.Order
	if wait > 0 && inm != "" {
		o, err = s.waitForChange(r.Context(), id, inm, wait)
	} else {
		o, err = s.store.FindOrderByID(r.Context(), id)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	tag := etag(o)
	w.Header().Set("ETag", tag)
	w.Header().Set("Cache-Control", "no-cache")
	if inm != "" && etagMatches(inm, tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, s.viewOrder(r, o))
}

// parseWait reads ?wait=: absent means no wait; otherwise it must be a positive Go
// duration, which is capped at maxWait.
func parseWait(q map[string][]string) (time.Duration, error) {
	vals, ok := q["wait"]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(vals[0])
	if err != nil || d <= 0 || len(vals) > 1 {
		return 0, badRequest("bad_request",
			"wait must be one positive duration such as 25s (at most 60s)")
	}
	return min(d, maxWait), nil
}

// waitForChange returns the order once its ETag no longer matches inm, or as it is
// when the wait is over. It subscribes before reading, so a change committed in
// between is not missed.
func (s *Server) waitForChange(ctx context.Context, id, inm string,
	wait time.Duration) (*order.Order, error) {
	sub := s.hub.Subscribe(id)
	defer sub.Close()

	o, err := s.store.FindOrderByID(ctx, id)
	if err != nil || !etagMatches(inm, etag(o)) {
		return o, err
	}

	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-timer.C:
			return o, nil
		case <-s.streams.Done():
			// Shutting down: answer now rather than hold the shutdown up.
			return o, nil
		case ev := <-sub.C:
			if ev.Version <= o.Version {
				continue
			}
		case <-sub.Lagged:
		}
		next, err := s.store.FindOrderByID(ctx, id)
		if err != nil {
			return nil, err
		}
		if !etagMatches(inm, etag(next)) {
			return next, nil
		}
		o = next
	}
}

type orderList struct {
	Orders []orderView `json:"orders"`
}

func (s *Server) handleOrderList(w http.ResponseWriter, r *http.Request) {
	f, err := parseFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	orders, err := s.store.FindOrders(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	list := orderList{Orders: make([]orderView, 0, len(orders))}
	for _, o := range orders {
		list.Orders = append(list.Orders, s.viewOrder(r, o))
	}
	writeJSON(w, http.StatusOK, list)
}

func parseFilter(q map[string][]string) (order.Filter, error) {
	var f order.Filter
	if v := first(q, "status"); v != "" {
		if v == "open" {
			f.Open = true
		} else if f.Status = order.Status(v); !f.Status.Valid() {
			return f, invalidField("status", "unknown status "+strconv.Quote(v))
		}
	}
	if v := first(q, "limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > order.MaxLimit {
			return f, invalidField("limit", "must be a number from 1 to "+
				strconv.Itoa(order.MaxLimit))
		}
		f.Limit = n
	}
	return f, nil
}

func first(q map[string][]string, key string) string {
	if v := q[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

type transitionRequest struct {
	Status          order.Status `json:"status"`
	Note            string       `json:"note"`
	ExpectedVersion *int64       `json:"expected_version"`
}

func (s *Server) handleOrderTransition(w http.ResponseWriter, r *http.Request) {
	var req transitionRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	o, err := s.transition(r, r.PathValue("id"), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(o))
	writeJSON(w, http.StatusOK, s.viewOrder(r, o))
}

// transition applies a staff transition request, with the expected version from the
// body or from If-Match (when both are given and differ, one of them is stale).
func (s *Server) transition(r *http.Request, id string, req transitionRequest) (*order.Order, error) {
	if req.Status == "" {
		return nil, invalidField("status", "is required")
	}
	var expected int64
	if req.ExpectedVersion != nil {
		if *req.ExpectedVersion < 1 {
			return nil, invalidField("expected_version", "must be a version number from 1")
		}
		expected = *req.ExpectedVersion
	}
	ifMatch, ok, err := versionFromIfMatch(r.Header.Get("If-Match"))
	if err != nil {
		cur, err := s.store.FindOrderByID(r.Context(), id)
		if err != nil {
			return nil, err
		}
		bad := *errBadIfMatch
		bad.currentVersion = cur.Version
		return nil, &bad
	}
	if ok {
		if expected != 0 && expected != ifMatch {
			cur, err := s.store.FindOrderByID(r.Context(), id)
			if err != nil {
				return nil, err
			}
			return nil, &order.StaleError{Expected: ifMatch, Current: cur.Version}
		}
		expected = ifMatch
	}

	o, ev, err := s.store.TransitionOrder(r.Context(), id,
		order.Transition{Status: req.Status, Note: req.Note, ExpectedVersion: expected})
	if err != nil {
		return nil, err
	}
	s.logger.Info("Order moved", "order_id", o.ID, "status", ev.Status, "version", ev.Version)
	return o, nil
}

// newOrderRequest is order.NewOrder with its lines left raw, so that a line holding a
// value of the wrong type is named with its index (items[2].quantity).
type newOrderRequest struct {
	CustomerName string            `json:"customer_name"`
	Phone        string            `json:"phone"`
	Fulfillment  order.Fulfillment `json:"fulfillment"`
	Address      *string           `json:"address"`
	Items        []json.RawMessage `json:"items"`
}

func (n *newOrderRequest) decode() (*order.NewOrder, error) {
	req := &order.NewOrder{CustomerName: n.CustomerName, Phone: n.Phone,
		Fulfillment: n.Fulfillment, Address: n.Address}
	if n.Items != nil {
		req.Items = make([]order.NewItem, len(n.Items))
	}
	for i, raw := range n.Items {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req.Items[i]); err != nil {
			var typeErr *json.UnmarshalTypeError
			switch {
			case !errors.As(err, &typeErr):
				return nil, decodeError(err)
			case typeErr.Field != "":
				return nil, invalidField(fmt.Sprintf("items[%d].%s", i, typeErr.Field),
					"must be a JSON "+jsonKind(typeErr.Type.Kind().String()))
			}
			return nil, invalidField(fmt.Sprintf("items[%d]", i), "must be a JSON object")
		}
	}
	return req, nil
}
