package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/orderstream/orderstream/pkg/order"
)

// boardPage is what the staff board template shows.
type boardPage struct {
	// Open holds the columns of the statuses orders move through, Done those of the
	// statuses they end in.
	Open    []boardColumn
	Done    []boardColumn
	Message *boardMessage
}

// boardColumn holds the cards of one status.
type boardColumn struct {
	Status   order.Status
	Label    string
	Finished bool
	Cards    []cardView
}

// boardMessage is the banner above the board after a form post.
type boardMessage struct {
	Error bool
	Text  string
}

// cardView is one order on the board.
type cardView struct {
	ID           string
	Short        string
	Status       order.Status
	Version      int64
	CustomerName string
	Phone        string
	Address      string
	Delivery     bool
	Items        []string
	Total        string
	CreatedISO   string
	CreatedClock string
	UpdatedISO   string
	UpdatedClock string
	Actions      []cardAction
	// Finished says how the order ended, for a delivered or cancelled order.
	Finished string
}

// cardAction is one button of a card: a status the order may move to now.
type cardAction struct {
	Status  order.Status
	Label   string
	Primary bool
}

// handleBoard renders the staff board: a column per status, the open orders, and the
// last few delivered and cancelled ones.
func (p *pageSet) handleBoard(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	menu, err := p.s.store.Menu(ctx)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	orders, err := p.s.store.FindOpenOrders(ctx)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	for _, st := range []order.Status{order.Delivered, order.Cancelled} {
		done, err := p.s.store.FindOrders(ctx, order.Filter{Status: st, Limit: finishedOnBoard})
		if err != nil {
			p.fail(w, r, err)
			return
		}
		orders = append(orders, done...)
	}

	page := boardPage{Message: p.boardMessage(r)}
	for _, st := range order.Statuses {
		col := boardColumn{Status: st, Label: statusWords[st].column, Finished: st.Terminal()}
		for _, o := range orders {
			if o.Status == st {
				col.Cards = append(col.Cards, newCardView(o, menu))
			}
		}
		if col.Finished {
			page.Done = append(page.Done, col)
		} else {
			page.Open = append(page.Open, col)
		}
	}
	p.render(w, r, "board", page)
}

// handleBoardCard renders one card, for the board's script to put in place.
func (p *pageSet) handleBoardCard(w http.ResponseWriter, r *http.Request) {
	o, err := p.s.store.FindOrderByID(r.Context(), r.PathValue("id"))
	if err != nil {
		p.fail(w, r, err)
		return
	}
	menu, err := p.s.store.Menu(r.Context())
	if err != nil {
		p.fail(w, r, err)
		return
	}
	w.Header().Set("ETag", etag(o))
	p.render(w, r, "card", newCardView(o, menu))
}

// handleBoardTransition applies a card's form. A plain form post is answered 303 back
// to the board, with the outcome in the query; the board's script asks for JSON
// (Accept: application/json) and gets the API's answer instead.
func (p *pageSet) handleBoardTransition(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	o, err := p.applyForm(w, r, id)

	if wantsJSON(r) {
		if err != nil {
			p.s.writeError(w, r, err)
			return
		}
		w.Header().Set("ETag", etag(o))
		writeJSON(w, http.StatusOK, p.s.viewOrder(r, o))
		return
	}

	q := url.Values{"order": {id}}
	if err == nil {
		q.Set("result", "moved")
		q.Set("to", string(o.Status))
	} else {
		status, body := p.s.describe(err)
		switch status {
		case http.StatusPreconditionFailed:
			q.Set("result", "stale")
		case http.StatusConflict:
			q.Set("result", "illegal")
			q.Set("to", r.PostForm.Get("status"))
		case http.StatusUnprocessableEntity:
			q.Set("result", "invalid")
			q.Set("field", body.Error.Field)
		case http.StatusNotFound:
			q.Set("result", "not_found")
		default:
			p.fail(w, r, err)
			return
		}
	}
	http.Redirect(w, r, "/staff?"+q.Encode()+"#order-"+url.PathEscape(id), http.StatusSeeOther)
}

// applyForm reads a card's form (status, note, expected_version) and moves the order.
func (p *pageSet) applyForm(w http.ResponseWriter, r *http.Request, id string) (
	*order.Order, error) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, tooLarge()
		}
		return nil, badRequest("bad_request", "the form could not be read")
	}

	expected, err := parseExpectedVersion(r.PostForm.Get("expected_version"))
	if err != nil {
		return nil, err
	}
	return p.s.transition(r, id, transitionRequest{
		Status:          order.Status(r.PostForm.Get("status")),
		Note:            r.PostForm.Get("note"),
		ExpectedVersion: expected,
	})
}

// boardMessage phrases the outcome of the last form post, named by the query the
// post redirected to. The order's current status comes from the store, not the query.
func (p *pageSet) boardMessage(r *http.Request) *boardMessage {
	q := r.URL.Query()
	id := q.Get("order")
	if id == "" {
		return nil
	}
	name := "Order #" + shortID(id)
	current := func() string {
		o, err := p.s.store.FindOrderByID(r.Context(), id)
		if err != nil {
			return "another status"
		}
		return statusName(o.Status)
	}

	switch q.Get("result") {
	case "moved":
		to := order.Status(q.Get("to"))
		if !to.Valid() {
			return &boardMessage{Text: name + " moved."}
		}
		return &boardMessage{Text: fmt.Sprintf("%s moved to %s.", name, statusName(to))}
	case "stale":
		return &boardMessage{Error: true, Text: fmt.Sprintf("%s was already moved to %s by "+
			"someone else; the board shows its current state.", name, current())}
	case "illegal":
		return &boardMessage{Error: true, Text: fmt.Sprintf("%s can no longer be moved "+
			"that way: it is %s now.", name, current())}
	case "invalid":
		text := name + " was not moved: the form was not filled in correctly."
		switch q.Get("field") {
		case "note":
			text = fmt.Sprintf("%s was not moved: a note may have at most %d characters.",
				name, order.MaxNoteLength)
		case "status":
			text = name + " was not moved: choose one of the card's buttons."
		}
		return &boardMessage{Error: true, Text: text}
	case "not_found":
		return &boardMessage{Error: true, Text: "There is no order #" + shortID(id) + "."}
	}
	return nil
}

// newCardView prepares an order for the board.
func newCardView(o *order.Order, menu *order.Menu) cardView {
	c := cardView{
		ID:           o.ID,
		Short:        shortID(o.ID),
		Status:       o.Status,
		Version:      o.Version,
		CustomerName: o.CustomerName,
		Phone:        o.Phone,
		Delivery:     o.Fulfillment == order.Delivery,
		Total:        money(o.TotalCents),
		CreatedISO:   order.FormatTime(o.CreatedAt),
		CreatedClock: o.CreatedAt.UTC().Format("15:04 UTC"),
		UpdatedISO:   order.FormatTime(o.UpdatedAt),
		UpdatedClock: o.UpdatedAt.UTC().Format("15:04 UTC"),
	}
	if o.Address != nil {
		c.Address = *o.Address
	}
	for _, it := range o.Items {
		c.Items = append(c.Items,
			fmt.Sprintf("%d × %s, %s", it.Quantity, pizzaName(menu, it.Pizza), it.Size))
	}

	for _, next := range o.Next() {
		label := statusWords[next].action
		if next == order.Delivered && o.Fulfillment == order.Pickup {
			label = "Picked up"
		}
		c.Actions = append(c.Actions, cardAction{Status: next, Label: label,
			Primary: next != order.Cancelled})
	}
	switch {
	case o.Status == order.Delivered && o.Fulfillment == order.Pickup:
		c.Finished = "Picked up"
	case o.Status.Terminal():
		c.Finished = statusWords[o.Status].column
	}
	return c
}

// pizzaName is the menu's name for a pizza id, or the id when the menu lacks it.
func pizzaName(menu *order.Menu, id string) string {
	if p, ok := menu.Pizza(id); ok {
		return p.Name
	}
	return id
}

// render executes a page template, buffered so that a failure gives a clean 500.
func (p *pageSet) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := p.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		p.fail(w, r, fmt.Errorf("render %s: %w", name, err))
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// fail answers an error on a staff page as a small HTML page, or as JSON to a script.
func (p *pageSet) fail(w http.ResponseWriter, r *http.Request, err error) {
	if wantsJSON(r) {
		p.s.writeError(w, r, err)
		return
	}
	status, body := p.s.report(w, r, err)
	p.renderProblem(w, status, http.StatusText(status), body.Error.Message)
}
