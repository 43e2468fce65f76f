package order

import "slices"

// Status is where an order stands in the kitchen.
type Status string

// The statuses of an order, in the order a delivery passes through them.
const (
	Placed         Status = "placed"
	Preparing      Status = "preparing"
	Baking         Status = "baking"
	Ready          Status = "ready"
	OutForDelivery Status = "out_for_delivery"
	Delivered      Status = "delivered"
	Cancelled      Status = "cancelled"
)

// Statuses lists every status in board order.
var Statuses = []Status{Placed, Preparing, Baking, Ready, OutForDelivery, Delivered, Cancelled}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	return slices.Contains(Statuses, s)
}

// Terminal reports whether no transition leaves s.
func (s Status) Terminal() bool {
	return s == Delivered || s == Cancelled
}

// Next returns the statuses an order of the given fulfillment may move to from s, in
// kitchen order, cancelled last. A terminal or unknown status has none.
func (s Status) Next(f Fulfillment) []Status {
	var next []Status
	switch s {
	case Placed:
		next = []Status{Preparing}
	case Preparing:
		next = []Status{Baking}
	case Baking:
		next = []Status{Ready}
	case Ready:
		if f == Delivery {
			next = []Status{OutForDelivery}
		} else {
			next = []Status{Delivered}
		}
	case OutForDelivery:
		if f != Delivery {
			// A pickup order never leaves with a driver.
			return []Status{}
		}
		next = []Status{Delivered}
	default:
		return []Status{}
	}
	return append(next, Cancelled)
}

// CanMove reports whether an order of fulfillment f may move from s to to.
func (s Status) CanMove(to Status, f Fulfillment) bool {
	return slices.Contains(s.Next(f), to)
}
