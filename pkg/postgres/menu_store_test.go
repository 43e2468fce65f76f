package postgres

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/orderstream/orderstream/pkg/order"
)

func TestMenu(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)

	m, err := s.Menu(t.Context())
	if err != nil {
		t.Fatalf("Menu: %v", err)
	}

	var ids []string
	for _, p := range m.Pizzas {
		ids = append(ids, p.ID)
		if p.Name == "" || len(p.Description) < 20 {
			t.Errorf("pizza %s: name %q, description %q", p.ID, p.Name, p.Description)
		}
		for _, size := range order.Sizes {
			if p.PricesCents[size] <= 0 {
				t.Errorf("pizza %s has no price for %s: %v", p.ID, size, p.PricesCents)
			}
		}
		if len(p.PricesCents) != len(order.Sizes) {
			t.Errorf("pizza %s: prices %v, want one per size", p.ID, p.PricesCents)
		}
	}
	wantIDs := []string{
		"margherita", "marinara", "diavola", "quattro_formaggi", "funghi", "capricciosa",
	}
	if diff := cmp.Diff(wantIDs, ids); diff != "" {
		t.Errorf("pizzas (-want +got):\n%s", diff)
	}
	wantMargherita := map[string]int64{"small": 900, "medium": 1200, "large": 1500}
	if diff := cmp.Diff(wantMargherita, m.Pizzas[0].PricesCents); diff != "" {
		t.Errorf("margherita prices (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(order.Sizes, m.Sizes); diff != "" {
		t.Errorf("sizes (-want +got):\n%s", diff)
	}
	if m.DeliveryFeeCents != 300 {
		t.Errorf("delivery fee = %d, want 300", m.DeliveryFeeCents)
	}
}
