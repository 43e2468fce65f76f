package postgres

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"

	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// discard is a logger for tests that do not look at the logs.
var discard = slog.New(slog.DiscardHandler)

// newTestDB returns a migrated database of the test's own, closed and dropped when the
// test ends, and its URL.
func newTestDB(tb testing.TB) (*DB, string) {
	tb.Helper()
	url := pgtest.NewDatabase(tb)

	ctx := context.Background()
	db, err := Open(ctx, url, 30, 30)
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })

	if err := Migrate(ctx, db.DB.DB, discard); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return db, url
}

// newTestStore returns a store on a database of the test's own.
func newTestStore(tb testing.TB) (*Store, *DB) {
	tb.Helper()
	db, _ := newTestDB(tb)
	return NewStore(db), db
}

// newOrder returns a valid request for an order with the given items.
func newOrder(f order.Fulfillment, items ...order.NewItem) *order.NewOrder {
	n := &order.NewOrder{
		CustomerName: "Ada Lovelace",
		Phone:        "+44 20 7946 0958",
		Fulfillment:  f,
		Items:        items,
	}
	if f == order.Delivery {
		addr := "12 Analytical Row, London"
		n.Address = &addr
	}
	return n
}

// item returns one line of a request to place an order.
func item(pizza, size string, quantity int) order.NewItem {
	return order.NewItem{Pizza: pizza, Size: size, Quantity: quantity}
}

// mustCreate places a valid order and fails the test if that fails.
func mustCreate(tb testing.TB, s *Store, f order.Fulfillment) *order.Order {
	tb.Helper()
	o, _, err := s.CreateOrder(context.Background(), newOrder(f,
		order.NewItem{Pizza: "margherita", Size: "medium", Quantity: 2},
		order.NewItem{Pizza: "diavola", Size: "large", Quantity: 1},
	))
	if err != nil {
		tb.Fatalf("CreateOrder: %v", err)
	}
	return o
}

// mustMove applies a transition and fails the test if that fails.
func mustMove(tb testing.TB, s *Store, id string, to order.Status) *order.Order {
	tb.Helper()
	o, _, err := s.TransitionOrder(context.Background(), id, order.Transition{Status: to})
	if err != nil {
		tb.Fatalf("TransitionOrder(%s): %v", to, err)
	}
	return o
}

// countRows returns the number of rows in table.
func countRows(tb testing.TB, db *DB, table string) int {
	tb.Helper()
	var n int
	if err := db.Get(&n, "SELECT count(*) FROM "+table); err != nil {
		tb.Fatalf("count %s: %v", table, err)
	}
	return n
}

// lockedBuffer is an io.Writer safe for concurrent use, for capturing logs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
