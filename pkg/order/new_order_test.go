package order

import (
	"errors"
	"strings"
	"testing"
)

var testMenu = &Menu{
	Pizzas: []Pizza{
		{ID: "margherita", PricesCents: map[string]int64{"small": 900, "medium": 1200, "large": 1500}},
		{ID: "diavola", PricesCents: map[string]int64{"small": 1100, "medium": 1400, "large": 1700}},
	},
	Sizes:            Sizes,
	DeliveryFeeCents: 300,
}

func ptr[T any](v T) *T { return &v }

func validOrder() NewOrder {
	return NewOrder{
		CustomerName: "Ada",
		Phone:        "+44 20 7946 0000",
		Fulfillment:  Delivery,
		Address:      ptr("1 Main St"),
		Items:        []NewItem{{Pizza: "margherita", Size: "large", Quantity: 2}},
	}
}

func TestPriceTotals(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(*NewOrder)
		total int64
	}{
		{"delivery adds the fee", func(*NewOrder) {}, 2*1500 + 300},
		{"pickup has no fee", func(n *NewOrder) { n.Fulfillment, n.Address = Pickup, nil }, 3000},
		{"several lines", func(n *NewOrder) {
			n.Items = append(n.Items, NewItem{Pizza: "diavola", Size: "small", Quantity: 3})
		}, 3000 + 3300 + 300},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := validOrder()
			tt.edit(&n)
			o, err := n.Price(testMenu)
			if err != nil {
				t.Fatalf("Price: %v", err)
			}
			if o.TotalCents != tt.total || o.Status != Placed || o.Version != 1 {
				t.Errorf("got total %d status %s version %d, want %d placed 1",
					o.TotalCents, o.Status, o.Version, tt.total)
			}
		})
	}
}

func TestPriceInvalid(t *testing.T) {
	many := make([]NewItem, MaxItems+1)
	for i := range many {
		many[i] = NewItem{Pizza: "margherita", Size: "small", Quantity: 1}
	}
	tests := []struct {
		field string
		edit  func(*NewOrder)
	}{
		{"customer_name", func(n *NewOrder) { n.CustomerName = "  " }},
		{"customer_name", func(n *NewOrder) { n.CustomerName = strings.Repeat("a", 101) }},
		{"customer_name", func(n *NewOrder) { n.CustomerName = "Ada\nLovelace" }},
		{"phone", func(n *NewOrder) { n.Phone = "" }},
		{"phone", func(n *NewOrder) { n.Phone = "call me" }},
		{"phone", func(n *NewOrder) { n.Phone = "12345" }},
		{"fulfillment", func(n *NewOrder) { n.Fulfillment = "drone" }},
		{"address", func(n *NewOrder) { n.Address = nil }},
		{"address", func(n *NewOrder) { n.Address = ptr(strings.Repeat("x", 201)) }},
		{"items", func(n *NewOrder) { n.Items = nil }},
		{"items", func(n *NewOrder) { n.Items = many }},
		{"items[0].pizza", func(n *NewOrder) { n.Items[0].Pizza = "hawaii" }},
		{"items[0].size", func(n *NewOrder) { n.Items[0].Size = "huge" }},
		{"items[0].quantity", func(n *NewOrder) { n.Items[0].Quantity = 0 }},
		{"items[0].quantity", func(n *NewOrder) { n.Items[0].Quantity = 21 }},
	}
	for _, tt := range tests {
		n := validOrder()
		tt.edit(&n)
		_, err := n.Price(testMenu)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field {
			t.Errorf("%s: got %v, want a FieldError for it", tt.field, err)
		}
	}
}

func TestCheckTransition(t *testing.T) {
	o := &Order{ID: "x", Fulfillment: Pickup, Status: Ready, Version: 4}
	tests := []struct {
		name string
		tr   Transition
		want error
	}{
		{"legal", Transition{Status: Delivered, ExpectedVersion: 4}, nil},
		{"stale before illegal", Transition{Status: Baking, ExpectedVersion: 3}, ErrStale},
		{"illegal", Transition{Status: OutForDelivery}, &IllegalTransitionError{}},
		{"unknown", Transition{Status: "eaten"}, &FieldError{}},
		{"long note", Transition{Status: Cancelled, Note: strings.Repeat("n", 501)}, &FieldError{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := CheckTransition(o, tt.tr)
			switch want := tt.want.(type) {
			case nil:
				if err != nil || ev.Version != 5 || *ev.PreviousStatus != Ready {
					t.Fatalf("got %+v, %v", ev, err)
				}
			case *IllegalTransitionError:
				var got *IllegalTransitionError
				if !errors.As(err, &got) || len(got.Allowed) != 2 {
					t.Fatalf("got %v, want illegal with allowed [delivered cancelled]", err)
				}
			case *FieldError:
				if !errors.As(err, &want) {
					t.Fatalf("got %v, want a FieldError", err)
				}
			default:
				if !errors.Is(err, tt.want) {
					t.Fatalf("got %v, want %v", err, tt.want)
				}
			}
		})
	}
}
