package order

import (
	"slices"
	"testing"
)

// TestCanMove checks every pair of statuses for both kinds of order against the
// transitions written out by hand.
func TestCanMove(t *testing.T) {
	common := [][2]Status{
		{Placed, Preparing}, {Preparing, Baking}, {Baking, Ready},
		{Placed, Cancelled}, {Preparing, Cancelled}, {Baking, Cancelled}, {Ready, Cancelled},
	}
	allowed := map[Fulfillment][][2]Status{
		Delivery: append(slices.Clone(common),
			[2]Status{Ready, OutForDelivery}, [2]Status{OutForDelivery, Delivered},
			[2]Status{OutForDelivery, Cancelled}),
		Pickup: append(slices.Clone(common), [2]Status{Ready, Delivered}),
	}

	for _, f := range []Fulfillment{Delivery, Pickup} {
		for _, from := range Statuses {
			for _, to := range Statuses {
				want := slices.Contains(allowed[f], [2]Status{from, to})
				if got := from.CanMove(to, f); got != want {
					t.Errorf("%s: %s -> %s: CanMove = %v, want %v", f, from, to, got, want)
				}
			}
		}
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		from Status
		f    Fulfillment
		want []Status
	}{
		{Placed, Delivery, []Status{Preparing, Cancelled}},
		{Ready, Delivery, []Status{OutForDelivery, Cancelled}},
		{Ready, Pickup, []Status{Delivered, Cancelled}},
		{OutForDelivery, Delivery, []Status{Delivered, Cancelled}},
		{OutForDelivery, Pickup, []Status{}},
		{Delivered, Delivery, []Status{}},
		{Cancelled, Pickup, []Status{}},
		{"bogus", Pickup, []Status{}},
	}
	for _, tt := range tests {
		got := tt.from.Next(tt.f)
		if !slices.Equal(got, tt.want) || got == nil {
			t.Errorf("%s.Next(%s) = %v, want %v", tt.from, tt.f, got, tt.want)
		}
	}
}

func TestTerminal(t *testing.T) {
	for _, s := range Statuses {
		want := s == Delivered || s == Cancelled
		if s.Terminal() != want {
			t.Errorf("%s.Terminal() = %v, want %v", s, !want, want)
		}
	}
}
