package postgres

import (
	"context"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/orderstream/orderstream/pkg/pgtest"
	migrations "github.com/orderstream/orderstream/sql"
)

// TestMigrateConcurrently starts three migration runs at once on one fresh database, as
// three replicas starting together would.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	url := pgtest.NewDatabase(t)
	ctx := t.Context()
	logs := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	const replicas = 3
	dbs := make([]*DB, replicas)
	for i := range dbs {
		db, err := Open(ctx, url, 4, 4)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		dbs[i] = db
	}

	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = Migrate(ctx, db.DB.DB, logger) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Migrate %d: %v", i, err)
		}
	}

	files, err := fs.Glob(migrations.FS, "*.sql")
	if err != nil || len(files) < 2 {
		t.Fatalf("migration files %v: %v", files, err)
	}
	db := dbs[0]
	if n := strings.Count(logs.String(), `msg="Applied migration"`); n != len(files) {
		t.Errorf("logged %d applied migrations, want %d:\n%s", n, len(files), logs)
	}
	var versions []int64
	q := `SELECT version_id FROM goose_db_version WHERE is_applied ORDER BY id`
	if err := db.SelectContext(ctx, &versions, q); err != nil {
		t.Fatal(err)
	}
	want := []int64{0}
	for i := range files {
		want = append(want, int64(i+1))
	}
	if !slices.Equal(versions, want) {
		t.Errorf("goose_db_version holds %v, want %v", versions, want)
	}
	if n := countRows(t, db, "pizzas"); n != 6 {
		t.Errorf("%d pizzas, want the 6 seeded once", n)
	}
	if n := countRows(t, db, "menu_settings"); n != 1 {
		t.Errorf("%d rows in menu_settings, want 1", n)
	}

	// A later run finds nothing to do.
	logs2 := &lockedBuffer{}
	err = Migrate(context.Background(), db.DB.DB, slog.New(slog.NewTextHandler(logs2, nil)))
	if err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	if strings.Contains(logs2.String(), "Applied migration") {
		t.Errorf("second run applied migrations:\n%s", logs2)
	}
}

// newOrderRow starts an insert of a row into orders, bypassing the store.
const newOrderRow = `INSERT INTO orders (customer_name, phone, fulfillment, total_cents, status) `

func TestSchema(t *testing.T) {
	t.Parallel()
	db, _ := newTestDB(t)
	ctx := t.Context()

	// Constraints that keep bad rows out whatever the code does.
	bad := []struct {
		name  string
		query string
	}{
		{"price not positive", `UPDATE pizza_prices SET price_cents = 0`},
		{"unknown size", `INSERT INTO pizza_prices VALUES ('margherita', 'huge', 2000)`},
		{"second settings row", `INSERT INTO menu_settings VALUES (false, 1)`},
		{"unknown status", newOrderRow + `VALUES ('a', '123456', 'pickup', 900, 'lost')`},
		{"unknown fulfillment", newOrderRow + `VALUES ('a', '123456', 'drone', 900, 'placed')`},
		{"delivery, no address", newOrderRow + `VALUES ('a', '123456', 'delivery', 9, 'placed')`},
	}
	for _, tt := range bad {
		if _, err := db.ExecContext(ctx, tt.query); err == nil {
			t.Errorf("%s: the database accepted %s", tt.name, tt.query)
		}
	}

	var id string
	err := db.GetContext(ctx, &id,
		newOrderRow+`VALUES ('a', '123456', 'pickup', 900, 'placed') RETURNING id`)
	if err != nil {
		t.Fatal(err)
	}
	badLines := []struct {
		name  string
		query string
	}{
		{"quantity 0", `INSERT INTO order_items VALUES ($1, 1, 'margherita', 'small', 0, 900)`},
		{"quantity 21", `INSERT INTO order_items VALUES ($1, 1, 'margherita', 'small', 21, 900)`},
		{"unknown pizza", `INSERT INTO order_items VALUES ($1, 1, 'hawaiian', 'small', 1, 900)`},
		{"first event with previous", `INSERT INTO order_events
			(order_id, version, status, previous_status) VALUES ($1, 1, 'placed', 'placed')`},
		{"later event without previous", `INSERT INTO order_events (order_id, version, status)
			VALUES ($1, 2, 'preparing')`},
	}
	for _, tt := range badLines {
		if _, err := db.ExecContext(ctx, tt.query, id); err == nil {
			t.Errorf("%s: the database accepted %s", tt.name, tt.query)
		}
	}

	insertEvent := `INSERT INTO order_events (order_id, version, status) VALUES ($1, 1, 'placed')`
	if _, err := db.ExecContext(ctx, insertEvent, id); err != nil {
		t.Fatalf("first event: %v", err)
	}
	if _, err := db.ExecContext(ctx, insertEvent, id); err == nil {
		t.Error("the database accepted two events with one version")
	}
}
