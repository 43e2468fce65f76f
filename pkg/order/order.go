// Package order is the domain of orderstream: orders, their statuses, the rules for
// moving between them and the validation of a new order. It does no I/O.
package order

import (
	"time"
)

// Fulfillment says how an order reaches the customer.
type Fulfillment string

// The ways an order can be fulfilled.
const (
	Delivery Fulfillment = "delivery"
	Pickup   Fulfillment = "pickup"
)

// Valid reports whether f is a known fulfillment.
func (f Fulfillment) Valid() bool {
	return f == Delivery || f == Pickup
}

// Item is one line of an order: a pizza from the menu, in a size, some number of times.
type Item struct {
	Pizza          string `json:"pizza"`
	Size           string `json:"size"`
	Quantity       int    `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is a customer's order as stored and as served by the API.
type Order struct {
	ID           string      `json:"id" db:"id"`
	CustomerName string      `json:"customer_name" db:"customer_name"`
	Phone        string      `json:"phone" db:"phone"`
	Fulfillment  Fulfillment `json:"fulfillment" db:"fulfillment"`
	Address      *string     `json:"address" db:"address"`
	Items        []Item      `json:"items" db:"-"`
	TotalCents   int64       `json:"total_cents" db:"total_cents"`
	Status       Status      `json:"status" db:"status"`
	Version      int64       `json:"version" db:"version"`
	CreatedAt    time.Time   `json:"created_at" db:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at" db:"updated_at"`
}

// Next returns the statuses the order may move to now.
func (o *Order) Next() []Status {
	return o.Status.Next(o.Fulfillment)
}

// Event is one stored status transition of an order. Version is the order's version
// after the transition; the first event of every order is version 1, status placed.
type Event struct {
	OrderID        string    `json:"order_id" db:"order_id"`
	Version        int64     `json:"version" db:"version"`
	Status         Status    `json:"status" db:"status"`
	PreviousStatus *Status   `json:"previous_status" db:"previous_status"`
	Note           string    `json:"note" db:"note"`
	At             time.Time `json:"at" db:"at"`
}

// Terminal reports whether the event ends its order's stream.
func (e *Event) Terminal() bool {
	return e.Status.Terminal()
}

// Filter selects orders for a listing.
type Filter struct {
	// Status, when set, keeps only orders in that status.
	Status Status
	// Open keeps only orders that are not delivered or cancelled.
	Open bool
	// Limit caps the number of orders; 0 means DefaultLimit.
	Limit int
}

// Limits of a listing.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Transition asks to move an order to a new status.
type Transition struct {
	Status Status
	Note   string
	// ExpectedVersion, when non-zero, must equal the order's current version.
	ExpectedVersion int64
}

// MaxNoteLength is the longest staff note accepted, in characters.
const MaxNoteLength = 500
