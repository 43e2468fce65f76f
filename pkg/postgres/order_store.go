package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/orderstream/orderstream/pkg/order"
)

// Store keeps orders, their events and the menu in PostgreSQL. It is safe for
// concurrent use.
type Store struct {
	db *DB
}

var _ order.Store = (*Store)(nil)

// NewStore returns a store on db.
func NewStore(db *DB) *Store {
	return &Store{db: db}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.db.Ping(ctx)
}

// orderColumns are the columns of orders that fill an order.Order.
const orderColumns = `id, customer_name, phone, fulfillment, address, total_cents, status,
	version, created_at, updated_at`

// eventColumns are the columns of order_events that fill an order.Event.
const eventColumns = `order_id, version, status, previous_status, note, at`

// itemRow is one row of order_items.
type itemRow struct {
	OrderID        string `db:"order_id"`
	Line           int    `db:"line"`
	Pizza          string `db:"pizza_id"`
	Size           string `db:"size"`
	Quantity       int    `db:"quantity"`
	UnitPriceCents int64  `db:"unit_price_cents"`
}

// CreateOrder prices the request against the stored menu and stores the order, its
// items and its first event (placed, version 1) in one transaction, announcing the
// event on Channel when it commits. An invalid request gives a *order.FieldError and
// stores nothing.
func (s *Store) CreateOrder(
	ctx context.Context, n *order.NewOrder,
) (*order.Order, *order.Event, error) {
	menu, err := s.Menu(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("create order: %w", err)
	}
	o, err := n.Price(menu)
	if err != nil {
		return nil, nil, fmt.Errorf("create order: %w", err)
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("create order: begin: %w", mapError(err))
	}
	defer tx.Rollback()

	ev, err := insertOrder(ctx, tx, o)
	if err != nil {
		return nil, nil, fmt.Errorf("create order: %w", mapError(err))
	}
	if err := notify(ctx, tx, ev); err != nil {
		return nil, nil, fmt.Errorf("create order %s: %w", o.ID, mapError(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("create order %s: commit: %w", o.ID, mapError(err))
	}
	return o, ev, nil
}

// insertOrder stores the priced order o with its items and its first event, and fills
// in the ID and times the database gave it.
func insertOrder(ctx context.Context, tx *sqlx.Tx, o *order.Order) (*order.Event, error) {
	const insertOrder = `
		INSERT INTO orders (customer_name, phone, fulfillment, address, total_cents,
			status, version)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		RETURNING ` + orderColumns
	// Scanning sets the columns' fields only, so o keeps its items.
	err := tx.GetContext(ctx, o, insertOrder,
		o.CustomerName, o.Phone, o.Fulfillment, o.Address, o.TotalCents, o.Status, o.Version)
	if err != nil {
		return nil, fmt.Errorf("insert order: %w", err)
	}
	inUTC(o)

	rows := make([]itemRow, len(o.Items))
	for i, it := range o.Items {
		rows[i] = itemRow{
			OrderID:        o.ID,
			Line:           i + 1,
			Pizza:          it.Pizza,
			Size:           it.Size,
			Quantity:       it.Quantity,
			UnitPriceCents: it.UnitPriceCents,
		}
	}
	const insertItems = `
		INSERT INTO order_items (order_id, line, pizza_id, size, quantity, unit_price_cents)
		VALUES (:order_id, :line, :pizza_id, :size, :quantity, :unit_price_cents)`
	if _, err := tx.NamedExecContext(ctx, insertItems, rows); err != nil {
		return nil, fmt.Errorf("insert items of order %s: %w", o.ID, err)
	}

	// The first event happens when the order is created, to the microsecond.
	ev := &order.Event{OrderID: o.ID, Version: o.Version, Status: o.Status, At: o.CreatedAt}
	if err := insertEvent(ctx, tx, ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// insertEvent stores ev, whose time must be set.
func insertEvent(ctx context.Context, tx *sqlx.Tx, ev *order.Event) error {
	const q = `
		INSERT INTO order_events (order_id, version, status, previous_status, note, at)
		VALUES ($1, $2, $3, $4, $5, $6)`
	_, err := tx.ExecContext(ctx, q,
		ev.OrderID, ev.Version, ev.Status, ev.PreviousStatus, ev.Note, ev.At)
	if err != nil {
		return fmt.Errorf("insert event %d of order %s: %w", ev.Version, ev.OrderID, err)
	}
	return nil
}

// notify announces ev on Channel as "<order id>:<version>". PostgreSQL delivers the
// notification only if the transaction commits.
func notify(ctx context.Context, tx *sqlx.Tx, ev *order.Event) error {
	payload := fmt.Sprintf("%s:%d", ev.OrderID, ev.Version)
	if _, err := tx.ExecContext(ctx, `SELECT pg_notify($1, $2)`, Channel, payload); err != nil {
		return fmt.Errorf("notify event %d: %w", ev.Version, err)
	}
	return nil
}

// FindOrderByID returns one order with its items. An unknown or malformed id gives
// order.ErrNotFound.
func (s *Store) FindOrderByID(ctx context.Context, id string) (*order.Order, error) {
	if !validID(id) {
		return nil, fmt.Errorf("find order %q: %w", id, order.ErrNotFound)
	}

	const q = `SELECT ` + orderColumns + ` FROM orders WHERE id = $1`
	var o order.Order
	if err := s.db.GetContext(ctx, &o, q, id); err != nil {
		return nil, fmt.Errorf("find order %s: %w", id, mapError(err))
	}
	inUTC(&o)

	if err := loadItems(ctx, s.db, []*order.Order{&o}); err != nil {
		return nil, fmt.Errorf("find order %s: %w", id, mapError(err))
	}
	return &o, nil
}

// FindOrders returns the orders matching f, newest first, with their items. A limit of
// 0 (or less) means order.DefaultLimit; a limit above order.MaxLimit counts as
// order.MaxLimit. An unknown status gives a *order.FieldError.
func (s *Store) FindOrders(ctx context.Context, f order.Filter) ([]*order.Order, error) {
	if f.Status != "" && !f.Status.Valid() {
		msg := fmt.Sprintf("unknown status %q", f.Status)
		return nil, fmt.Errorf("find orders: %w", &order.FieldError{Field: "status", Message: msg})
	}
	limit := f.Limit
	if limit <= 0 {
		limit = order.DefaultLimit
	}
	limit = min(limit, order.MaxLimit)

	const q = `
		SELECT ` + orderColumns + `
		FROM orders
		WHERE ($1 = '' OR status = $1)
			AND (NOT $2 OR status NOT IN ('delivered', 'cancelled'))
		ORDER BY created_at DESC, id DESC
		LIMIT $3`
	orders, err := s.selectOrders(ctx, q, string(f.Status), f.Open, limit)
	if err != nil {
		return nil, fmt.Errorf("find orders: %w", err)
	}
	return orders, nil
}

// FindOpenOrders returns every order that is neither delivered nor cancelled, oldest
// first, with its items: what the staff board shows.
func (s *Store) FindOpenOrders(ctx context.Context) ([]*order.Order, error) {
	const q = `
		SELECT ` + orderColumns + `
		FROM orders
		WHERE status NOT IN ('delivered', 'cancelled')
		ORDER BY created_at, id`
	orders, err := s.selectOrders(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("find open orders: %w", err)
	}
	return orders, nil
}

// selectOrders runs a query over orders and loads the items of the orders it returns.
// Errors come mapped.
func (s *Store) selectOrders(
	ctx context.Context, query string, args ...any,
) ([]*order.Order, error) {
	var orders []*order.Order
	if err := s.db.SelectContext(ctx, &orders, query, args...); err != nil {
		return nil, mapError(err)
	}
	for _, o := range orders {
		inUTC(o)
	}
	if err := loadItems(ctx, s.db, orders); err != nil {
		return nil, mapError(err)
	}
	if orders == nil {
		orders = []*order.Order{}
	}
	return orders, nil
}

// loadItems fills in the items of orders, with one query for all of them.
func loadItems(ctx context.Context, q sqlx.QueryerContext, orders []*order.Order) error {
	if len(orders) == 0 {
		return nil
	}
	byID := make(map[string]*order.Order, len(orders))
	ids := make([]string, len(orders))
	for i, o := range orders {
		byID[o.ID] = o
		ids[i] = o.ID
		o.Items = []order.Item{}
	}

	const query = `
		SELECT order_id, line, pizza_id, size, quantity, unit_price_cents
		FROM order_items
		WHERE order_id = ANY($1::uuid[])
		ORDER BY order_id, line`
	var rows []itemRow
	if err := sqlx.SelectContext(ctx, q, &rows, query, pq.Array(ids)); err != nil {
		return fmt.Errorf("load items: %w", err)
	}
	for _, r := range rows {
		o := byID[r.OrderID]
		o.Items = append(o.Items, order.Item{
			Pizza:          r.Pizza,
			Size:           r.Size,
			Quantity:       r.Quantity,
			UnitPriceCents: r.UnitPriceCents,
		})
	}
	return nil
}

// TransitionOrder checks and applies a transition in one transaction: it locks the
// order, checks the request with order.CheckTransition (a stale expected version
// first, then the move), updates the order, stores the event and announces it on
// Channel. A refused transition changes and announces nothing.
func (s *Store) TransitionOrder(
	ctx context.Context, id string, t order.Transition,
) (*order.Order, *order.Event, error) {
	if !validID(id) {
		return nil, nil, fmt.Errorf("transition order %q: %w", id, order.ErrNotFound)
	}

	tx, err := s.db.BeginTxx(ctx, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("transition order %s: begin: %w", id, mapError(err))
	}
	defer tx.Rollback()

	o, ev, err := applyTransition(ctx, tx, id, t)
	if err != nil {
		return nil, nil, fmt.Errorf("transition order %s: %w", id, mapError(err))
	}
	if err := tx.Commit(); err != nil {
		return nil, nil, fmt.Errorf("transition order %s: commit: %w", id, mapError(err))
	}
	return o, ev, nil
}

// applyTransition does the work of TransitionOrder inside tx.
func applyTransition(
	ctx context.Context, tx *sqlx.Tx, id string, t order.Transition,
) (*order.Order, *order.Event, error) {
	// FOR UPDATE makes concurrent transitions of one order wait for each other; a
	// waiting one then reads the order as the winner left it.
	const lockOrder = `SELECT ` + orderColumns + ` FROM orders WHERE id = $1 FOR UPDATE`
	var o order.Order
	if err := tx.GetContext(ctx, &o, lockOrder, id); err != nil {
		return nil, nil, fmt.Errorf("lock order: %w", err)
	}

	ev, err := order.CheckTransition(&o, t)
	if err != nil {
		return nil, nil, err
	}

	const update = `
		UPDATE orders
		SET status = $2, version = version + 1, updated_at = clock_timestamp()
		WHERE id = $1
		RETURNING version, updated_at`
	var row struct {
		Version   int64     `db:"version"`
		UpdatedAt time.Time `db:"updated_at"`
	}
	if err := tx.GetContext(ctx, &row, update, id, ev.Status); err != nil {
		return nil, nil, fmt.Errorf("update order: %w", err)
	}
	o.Status, o.Version, o.UpdatedAt = ev.Status, row.Version, row.UpdatedAt
	inUTC(&o)
	ev.At = o.UpdatedAt

	if err := insertEvent(ctx, tx, ev); err != nil {
		return nil, nil, err
	}
	if err := notify(ctx, tx, ev); err != nil {
		return nil, nil, err
	}
	if err := loadItems(ctx, tx, []*order.Order{&o}); err != nil {
		return nil, nil, err
	}
	return &o, ev, nil
}

// FindEvents returns the order's events with a version above after, oldest first. An
// unknown or malformed order id gives order.ErrNotFound.
func (s *Store) FindEvents(
	ctx context.Context, orderID string, after int64,
) ([]order.Event, error) {
	if !validID(orderID) {
		return nil, fmt.Errorf("find events of order %q: %w", orderID, order.ErrNotFound)
	}

	const q = `
		SELECT ` + eventColumns + `
		FROM order_events
		WHERE order_id = $1 AND version > $2
		ORDER BY version`
	events := []order.Event{}
	if err := s.db.SelectContext(ctx, &events, q, orderID, after); err != nil {
		return nil, fmt.Errorf("find events of order %s: %w", orderID, mapError(err))
	}
	for i := range events {
		events[i].At = events[i].At.UTC()
	}

	// An order always has its first event, so nothing at all may mean no order, or
	// only nothing new.
	if len(events) == 0 {
		if err := s.checkOrderExists(ctx, orderID); err != nil {
			return nil, fmt.Errorf("find events of order %s: %w", orderID, err)
		}
	}
	return events, nil
}

// FindEvent returns one event of an order. An unknown order or version gives
// order.ErrNotFound.
func (s *Store) FindEvent(
	ctx context.Context, orderID string, version int64,
) (*order.Event, error) {
	if !validID(orderID) {
		return nil, fmt.Errorf("find event %d of order %q: %w", version, orderID, order.ErrNotFound)
	}

	const q = `SELECT ` + eventColumns + ` FROM order_events WHERE order_id = $1 AND version = $2`
	var ev order.Event
	if err := s.db.GetContext(ctx, &ev, q, orderID, version); err != nil {
		return nil, fmt.Errorf("find event %d of order %s: %w", version, orderID, mapError(err))
	}
	ev.At = ev.At.UTC()
	return &ev, nil
}

// checkOrderExists returns order.ErrNotFound when there is no order with the id. Errors
// come mapped.
func (s *Store) checkOrderExists(ctx context.Context, id string) error {
	var exists bool
	err := s.db.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM orders WHERE id = $1)`, id)
	if err != nil {
		return mapError(err)
	}
	if !exists {
		return order.ErrNotFound
	}
	return nil
}

// inUTC puts the times of o in UTC.
func inUTC(o *order.Order) {
	o.CreatedAt = o.CreatedAt.UTC()
	o.UpdatedAt = o.UpdatedAt.UTC()
}

// validID reports whether id is a UUID in its canonical text form, such as
// 0b7e3f5c-4d1a-4c8e-9f2b-6a5d4c3b2a10; upper-case hex digits are accepted too.
// Checking before querying keeps malformed ids from reaching PostgreSQL, which would
// refuse them with an error rather than find nothing.
func validID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := range len(id) {
		c := id[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}
