package order

import "slices"

// Sizes lists the sizes every pizza comes in, smallest first.
var Sizes = []string{"small", "medium", "large"}

// Pizza is one entry of the menu.
type Pizza struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Description string           `json:"description"`
	PricesCents map[string]int64 `json:"prices_cents"`
}

// Menu is what the pizzeria sells, as served at GET /api/menu.
type Menu struct {
	Pizzas           []Pizza  `json:"pizzas"`
	Sizes            []string `json:"sizes"`
	DeliveryFeeCents int64    `json:"delivery_fee_cents"`
}

// Pizza returns the menu's pizza with the given id, and whether the menu has it.
func (m *Menu) Pizza(id string) (*Pizza, bool) {
	i := slices.IndexFunc(m.Pizzas, func(p Pizza) bool { return p.ID == id })
	if i < 0 {
		return nil, false
	}
	return &m.Pizzas[i], true
}

// Price returns the price of a pizza in a size, and whether the menu has it.
func (m *Menu) Price(pizza, size string) (int64, bool) {
	p, ok := m.Pizza(pizza)
	if !ok {
		return 0, false
	}
	cents, ok := p.PricesCents[size]
	return cents, ok
}
