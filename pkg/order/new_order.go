package order

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Limits of a new order.
const (
	MaxItems        = 50
	MaxQuantity     = 20
	MaxNameLength   = 100
	MaxAddressChars = 200
	MinPhoneDigits  = 6
	MaxPhoneLength  = 32
)

// NewItem is one line of a request to place an order.
type NewItem struct {
	Pizza    string `json:"pizza"`
	Size     string `json:"size"`
	Quantity int    `json:"quantity"`
}

// NewOrder is a request to place an order: the only fields a customer may send.
type NewOrder struct {
	CustomerName string      `json:"customer_name"`
	Phone        string      `json:"phone"`
	Fulfillment  Fulfillment `json:"fulfillment"`
	Address      *string     `json:"address"`
	Items        []NewItem   `json:"items"`
}

// Price validates the request against the menu and returns the order it describes,
// with prices and the total computed from the menu, in status placed at version 1.
// The order has no ID or times yet. An invalid field gives a *FieldError.
func (n *NewOrder) Price(m *Menu) (*Order, error) {
	o := &Order{
		CustomerName: strings.TrimSpace(n.CustomerName),
		Phone:        strings.TrimSpace(n.Phone),
		Fulfillment:  n.Fulfillment,
		Status:       Placed,
		Version:      1,
	}
	if err := checkText("customer_name", o.CustomerName, MaxNameLength); err != nil {
		return nil, err
	}
	if err := checkPhone(o.Phone); err != nil {
		return nil, err
	}
	if !o.Fulfillment.Valid() {
		return nil, &FieldError{"fulfillment", `must be "delivery" or "pickup"`}
	}

	if o.Fulfillment == Delivery {
		if n.Address == nil || strings.TrimSpace(*n.Address) == "" {
			return nil, &FieldError{"address", "is required for delivery"}
		}
		addr := strings.TrimSpace(*n.Address)
		if err := checkText("address", addr, MaxAddressChars); err != nil {
			return nil, err
		}
		o.Address = &addr
	}

	items, total, err := priceItems(n.Items, m)
	if err != nil {
		return nil, err
	}
	o.Items = items
	o.TotalCents = total
	if o.Fulfillment == Delivery {
		o.TotalCents += m.DeliveryFeeCents
	}
	return o, nil
}

func priceItems(lines []NewItem, m *Menu) ([]Item, int64, error) {
	if len(lines) == 0 || len(lines) > MaxItems {
		return nil, 0, &FieldError{"items", fmt.Sprintf("must hold 1 to %d lines", MaxItems)}
	}

	items := make([]Item, 0, len(lines))
	var total int64
	for i, line := range lines {
		field := fmt.Sprintf("items[%d]", i)
		if _, ok := m.Pizza(line.Pizza); !ok {
			return nil, 0, &FieldError{field + ".pizza", fmt.Sprintf("unknown pizza %q", line.Pizza)}
		}
		price, ok := m.Price(line.Pizza, line.Size)
		if !ok {
			return nil, 0, &FieldError{field + ".size", fmt.Sprintf("unknown size %q", line.Size)}
		}
		if line.Quantity < 1 || line.Quantity > MaxQuantity {
			msg := fmt.Sprintf("must be 1 to %d", MaxQuantity)
			return nil, 0, &FieldError{field + ".quantity", msg}
		}
		items = append(items, Item{
			Pizza:          line.Pizza,
			Size:           line.Size,
			Quantity:       line.Quantity,
			UnitPriceCents: price,
		})
		total += price * int64(line.Quantity)
	}
	return items, total, nil
}

// checkText accepts one line of printable text of 1..max characters.
func checkText(field, s string, max int) error {
	n := utf8.RuneCountInString(s)
	switch {
	case n == 0:
		return &FieldError{field, "is required"}
	case n > max:
		return &FieldError{field, fmt.Sprintf("must be at most %d characters", max)}
	case !utf8.ValidString(s):
		return &FieldError{field, "must be valid UTF-8"}
	case strings.ContainsFunc(s, unicode.IsControl):
		return &FieldError{field, "must be one line without control characters"}
	}
	return nil
}

// checkPhone accepts digits with the usual separators and an optional leading +.
func checkPhone(s string) error {
	if s == "" {
		return &FieldError{"phone", "is required"}
	}
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0, r == ' ', r == '-', r == '(', r == ')', r == '.':
		default:
			return &FieldError{"phone", "may hold only digits, spaces, + - ( ) and ."}
		}
	}
	if digits < MinPhoneDigits || len(s) > MaxPhoneLength {
		return &FieldError{"phone", fmt.Sprintf("must have at least %d digits", MinPhoneDigits)}
	}
	return nil
}

// CheckTransition validates a transition request against the current order: a stale
// expected version first (*StaleError), then legality (*IllegalTransitionError), then
// the note (*FieldError). It returns the event the transition creates, without its time.
func CheckTransition(o *Order, t Transition) (*Event, error) {
	if t.ExpectedVersion != 0 && t.ExpectedVersion != o.Version {
		return nil, &StaleError{Expected: t.ExpectedVersion, Current: o.Version}
	}
	if !t.Status.Valid() {
		return nil, &FieldError{"status", fmt.Sprintf("unknown status %q", t.Status)}
	}
	if !o.Status.CanMove(t.Status, o.Fulfillment) {
		return nil, &IllegalTransitionError{From: o.Status, To: t.Status, Allowed: o.Next()}
	}
	note := strings.TrimSpace(t.Note)
	if utf8.RuneCountInString(note) > MaxNoteLength {
		return nil, &FieldError{"note", fmt.Sprintf("must be at most %d characters", MaxNoteLength)}
	}
	if strings.ContainsFunc(note, func(r rune) bool { return unicode.IsControl(r) && r != '\n' }) {
		return nil, &FieldError{"note", "must not hold control characters"}
	}

	prev := o.Status
	return &Event{
		OrderID:        o.ID,
		Version:        o.Version + 1,
		Status:         t.Status,
		PreviousStatus: &prev,
		Note:           note,
	}, nil
}
