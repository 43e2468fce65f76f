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

// Price returns the price of a pizza in a size, and whether the menu has it.
func (m *Menu) Price(pizza, size string) (int64, bool) {
	i := slices.IndexFunc(m.Pizzas, func(p Pizza) bool { return p.ID == pizza })
	if i < 0 {
		return 0, false
	}
	cents, ok := m.Pizzas[i].PricesCents[size]
	return cents, ok
}

// HasPizza reports whether the menu lists the pizza.
func (m *Menu) HasPizza(pizza string) bool {
	return slices.ContainsFunc(m.Pizzas, func(p Pizza) bool { return p.ID == pizza })
}
