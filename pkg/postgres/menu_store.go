package postgres

import (
	"context"
	"fmt"
	"slices"

	"github.com/orderstream/orderstream/pkg/order"
)

// Menu returns the menu: the pizzas in menu order, each with its prices by size, the
// sizes and the delivery fee.
func (s *Store) Menu(ctx context.Context) (*order.Menu, error) {
	m := &order.Menu{Pizzas: []order.Pizza{}, Sizes: slices.Clone(order.Sizes)}
	err := s.db.GetContext(ctx, &m.DeliveryFeeCents, `SELECT delivery_fee_cents FROM menu_settings`)
	if err != nil {
		return nil, fmt.Errorf("read menu settings: %w", mapError(err))
	}

	const q = `
		SELECT p.id, p.name, p.description, pp.size, pp.price_cents
		FROM pizzas p
		JOIN pizza_prices pp ON pp.pizza_id = p.id
		ORDER BY p.position, p.id`
	var rows []struct {
		ID          string `db:"id"`
		Name        string `db:"name"`
		Description string `db:"description"`
		Size        string `db:"size"`
		PriceCents  int64  `db:"price_cents"`
	}
	if err := s.db.SelectContext(ctx, &rows, q); err != nil {
		return nil, fmt.Errorf("read menu: %w", mapError(err))
	}

	// Rows come grouped by pizza, one per size.
	for _, r := range rows {
		last := len(m.Pizzas) - 1
		if last < 0 || m.Pizzas[last].ID != r.ID {
			m.Pizzas = append(m.Pizzas, order.Pizza{
				ID:          r.ID,
				Name:        r.Name,
				Description: r.Description,
				PricesCents: map[string]int64{},
			})
			last++
		}
		m.Pizzas[last].PricesCents[r.Size] = r.PriceCents
	}
	return m, nil
}
