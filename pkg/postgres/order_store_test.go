package postgres

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/lib/pq"

	"github.com/orderstream/orderstream/pkg/order"
)

func TestCreateOrder(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	ctx := t.Context()

	items := []order.NewItem{
		{Pizza: "margherita", Size: "medium", Quantity: 2},
		{Pizza: "diavola", Size: "large", Quantity: 1},
	}
	wantItems := []order.Item{
		{Pizza: "margherita", Size: "medium", Quantity: 2, UnitPriceCents: 1200},
		{Pizza: "diavola", Size: "large", Quantity: 1, UnitPriceCents: 1600},
	}
	tests := []struct {
		fulfillment order.Fulfillment
		total       int64
	}{
		{order.Delivery, 2*1200 + 1600 + 300},
		{order.Pickup, 2*1200 + 1600},
	}
	for _, tt := range tests {
		t.Run(string(tt.fulfillment), func(t *testing.T) {
			before := time.Now()
			o, ev, err := s.CreateOrder(ctx, newOrder(tt.fulfillment, items...))
			if err != nil {
				t.Fatalf("CreateOrder: %v", err)
			}

			if !validID(o.ID) {
				t.Errorf("ID %q is not a UUID", o.ID)
			}
			if o.TotalCents != tt.total {
				t.Errorf("TotalCents = %d, want %d", o.TotalCents, tt.total)
			}
			if o.Status != order.Placed || o.Version != 1 {
				t.Errorf("status %s version %d, want placed version 1", o.Status, o.Version)
			}
			if diff := cmp.Diff(wantItems, o.Items); diff != "" {
				t.Errorf("items (-want +got):\n%s", diff)
			}
			if (o.Address != nil) != (tt.fulfillment == order.Delivery) {
				t.Errorf("Address = %v for %s", o.Address, tt.fulfillment)
			}
			if o.CreatedAt.Location() != time.UTC || !o.CreatedAt.Equal(o.UpdatedAt) {
				t.Errorf("CreatedAt %v, UpdatedAt %v: want equal, in UTC", o.CreatedAt, o.UpdatedAt)
			}
			if d := o.CreatedAt.Sub(before); d < -time.Minute || d > time.Minute {
				t.Errorf("CreatedAt %v is far from now %v", o.CreatedAt, before)
			}

			want := &order.Event{OrderID: o.ID, Version: 1, Status: order.Placed, At: o.CreatedAt}
			if diff := cmp.Diff(want, ev); diff != "" {
				t.Errorf("event (-want +got):\n%s", diff)
			}

			got, err := s.FindOrderByID(ctx, o.ID)
			if err != nil {
				t.Fatalf("FindOrderByID: %v", err)
			}
			if diff := cmp.Diff(o, got); diff != "" {
				t.Errorf("stored order (-created +found):\n%s", diff)
			}
		})
	}
}

func TestCreateOrderInvalid(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)

	tests := []struct {
		name  string
		item  order.NewItem
		field string
	}{
		{"unknown pizza", item("hawaiian", "small", 1), "items[1].pizza"},
		{"unknown size", item("funghi", "huge", 1), "items[1].size"},
		{"no quantity", item("funghi", "small", 0), "items[1].quantity"},
		{"too many", item("funghi", "small", 21), "items[1].quantity"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := order.NewItem{Pizza: "marinara", Size: "small", Quantity: 1}
			_, _, err := s.CreateOrder(t.Context(), newOrder(order.Delivery, good, tt.item))

			var fe *order.FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("CreateOrder: %v, want a *order.FieldError", err)
			}
			if fe.Field != tt.field {
				t.Errorf("field %q, want %q", fe.Field, tt.field)
			}
		})
	}

	for _, table := range []string{"orders", "order_items", "order_events"} {
		if n := countRows(t, db, table); n != 0 {
			t.Errorf("%d rows in %s after refused orders, want 0", n, table)
		}
	}
}

func TestFindOrderByIDNotFound(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	o := mustCreate(t, s, order.Pickup)

	ids := []string{
		"6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f",
		"",
		"abc",
		"1",
		o.ID + "0",
		o.ID[:35],
		"{" + o.ID[1:35] + "}",
		strings.ReplaceAll(o.ID, "-", ""),
		"' OR 1=1 --",
		"6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4g",
	}
	for _, id := range ids {
		_, err := s.FindOrderByID(t.Context(), id)
		if !errors.Is(err, order.ErrNotFound) {
			t.Errorf("FindOrderByID(%q): %v, want order.ErrNotFound", id, err)
		}
		_, _, err = s.TransitionOrder(t.Context(), id, order.Transition{Status: order.Cancelled})
		if !errors.Is(err, order.ErrNotFound) {
			t.Errorf("TransitionOrder(%q): %v, want order.ErrNotFound", id, err)
		}
		_, err = s.FindEvents(t.Context(), id, 0)
		if !errors.Is(err, order.ErrNotFound) {
			t.Errorf("FindEvents(%q): %v, want order.ErrNotFound", id, err)
		}
		_, err = s.FindEvent(t.Context(), id, 1)
		if !errors.Is(err, order.ErrNotFound) {
			t.Errorf("FindEvent(%q): %v, want order.ErrNotFound", id, err)
		}
	}

	// PostgreSQL reads upper-case hex digits too.
	got, err := s.FindOrderByID(t.Context(), strings.ToUpper(o.ID))
	if err != nil || got.ID != o.ID {
		t.Errorf("FindOrderByID(upper case) = %v, %v; want order %s", got, err, o.ID)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)

	tests := []struct {
		fulfillment order.Fulfillment
		path        []order.Status
	}{
		{order.Delivery, []order.Status{
			order.Preparing, order.Baking, order.Ready, order.OutForDelivery, order.Delivered,
		}},
		{order.Pickup, []order.Status{order.Preparing, order.Baking, order.Ready, order.Delivered}},
		{order.Delivery, []order.Status{order.Preparing, order.Cancelled}},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%s to %s", tt.fulfillment, tt.path[len(tt.path)-1])
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			created := mustCreate(t, s, tt.fulfillment)

			wantEvents := []order.Event{{OrderID: created.ID, Version: 1, Status: order.Placed}}
			prev := created
			for i, to := range tt.path {
				note := fmt.Sprintf("step %d", i+1)
				tr := order.Transition{Status: to, Note: " " + note + "\n",
					ExpectedVersion: prev.Version}
				o, ev, err := s.TransitionOrder(ctx, created.ID, tr)
				if err != nil {
					t.Fatalf("TransitionOrder(%s): %v", to, err)
				}

				from := prev.Status
				want := &order.Event{OrderID: o.ID, Version: prev.Version + 1, Status: to,
					PreviousStatus: &from, Note: note, At: o.UpdatedAt}
				if diff := cmp.Diff(want, ev); diff != "" {
					t.Errorf("event (-want +got):\n%s", diff)
				}
				if o.Status != to || o.Version != int64(i+2) {
					t.Errorf("order at %s v%d, want %s v%d", o.Status, o.Version, to, i+2)
				}
				if diff := cmp.Diff(created.Items, o.Items); diff != "" {
					t.Errorf("items (-want +got):\n%s", diff)
				}
				if !o.CreatedAt.Equal(created.CreatedAt) || !o.UpdatedAt.After(prev.UpdatedAt) {
					t.Errorf("created %v, updated %v after %v",
						o.CreatedAt, o.UpdatedAt, prev.UpdatedAt)
				}
				if o.UpdatedAt.Location() != time.UTC {
					t.Errorf("UpdatedAt %v not in UTC", o.UpdatedAt)
				}

				found, err := s.FindOrderByID(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				if diff := cmp.Diff(o, found); diff != "" {
					t.Errorf("stored order (-returned +found):\n%s", diff)
				}
				wantEvents = append(wantEvents, *ev)
				prev = o
			}

			events, err := s.FindEvents(ctx, created.ID, 0)
			if err != nil {
				t.Fatalf("FindEvents: %v", err)
			}
			wantEvents[0].At = created.CreatedAt
			if diff := cmp.Diff(wantEvents, events); diff != "" {
				t.Errorf("events (-want +got):\n%s", diff)
			}
			for after := int64(0); after <= int64(len(wantEvents))+1; after++ {
				got, err := s.FindEvents(ctx, created.ID, after)
				if err != nil {
					t.Fatalf("FindEvents after %d: %v", after, err)
				}
				want := wantEvents[min(int(after), len(wantEvents)):]
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("events after %d (-want +got):\n%s", after, diff)
				}
			}
			for _, want := range wantEvents {
				got, err := s.FindEvent(ctx, created.ID, want.Version)
				if err != nil {
					t.Fatalf("FindEvent(%d): %v", want.Version, err)
				}
				if diff := cmp.Diff(&want, got); diff != "" {
					t.Errorf("event %d (-want +got):\n%s", want.Version, diff)
				}
			}
			_, err = s.FindEvent(ctx, created.ID, int64(len(wantEvents))+1)
			if !errors.Is(err, order.ErrNotFound) {
				t.Errorf("FindEvent past the last: %v, want order.ErrNotFound", err)
			}

			// A finished order moves no more.
			cancel := order.Transition{Status: order.Cancelled}
			_, _, err = s.TransitionOrder(ctx, created.ID, cancel)
			var ite *order.IllegalTransitionError
			if !errors.As(err, &ite) || ite.Allowed == nil || len(ite.Allowed) != 0 {
				t.Errorf("TransitionOrder on a finished order: %v, want no statuses allowed", err)
			}
		})
	}
}

func TestTransitionRefused(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)

	// Each case starts from a fresh order moved along setup, at version len(setup)+1.
	tests := []struct {
		name        string
		fulfillment order.Fulfillment
		setup       []order.Status
		transition  order.Transition
		illegal     *order.IllegalTransitionError
		stale       *order.StaleError
		field       string
	}{
		{
			name: "skip a step", fulfillment: order.Pickup,
			transition: order.Transition{Status: order.Baking},
			illegal: &order.IllegalTransitionError{From: order.Placed, To: order.Baking,
				Allowed: []order.Status{order.Preparing, order.Cancelled}},
		},
		{
			name: "pickup out for delivery", fulfillment: order.Pickup,
			setup:      []order.Status{order.Preparing, order.Baking, order.Ready},
			transition: order.Transition{Status: order.OutForDelivery},
			illegal: &order.IllegalTransitionError{From: order.Ready, To: order.OutForDelivery,
				Allowed: []order.Status{order.Delivered, order.Cancelled}},
		},
		{
			name: "delivery ready to delivered", fulfillment: order.Delivery,
			setup:      []order.Status{order.Preparing, order.Baking, order.Ready},
			transition: order.Transition{Status: order.Delivered, ExpectedVersion: 4},
			illegal: &order.IllegalTransitionError{From: order.Ready, To: order.Delivered,
				Allowed: []order.Status{order.OutForDelivery, order.Cancelled}},
		},
		{
			name: "backwards", fulfillment: order.Delivery,
			setup:      []order.Status{order.Preparing},
			transition: order.Transition{Status: order.Placed},
			illegal: &order.IllegalTransitionError{From: order.Preparing, To: order.Placed,
				Allowed: []order.Status{order.Baking, order.Cancelled}},
		},
		{
			name: "cancelled", fulfillment: order.Delivery,
			setup:      []order.Status{order.Cancelled},
			transition: order.Transition{Status: order.Preparing},
			illegal: &order.IllegalTransitionError{From: order.Cancelled, To: order.Preparing,
				Allowed: []order.Status{}},
		},
		{
			name: "stale and legal", fulfillment: order.Delivery,
			setup:      []order.Status{order.Preparing},
			transition: order.Transition{Status: order.Baking, ExpectedVersion: 1},
			stale:      &order.StaleError{Expected: 1, Current: 2},
		},
		{
			name: "stale and illegal", fulfillment: order.Delivery,
			setup:      []order.Status{order.Preparing},
			transition: order.Transition{Status: order.Delivered, ExpectedVersion: 1},
			stale:      &order.StaleError{Expected: 1, Current: 2},
		},
		{
			name: "ahead of the order", fulfillment: order.Pickup,
			transition: order.Transition{Status: order.Preparing, ExpectedVersion: 7},
			stale:      &order.StaleError{Expected: 7, Current: 1},
		},
		{
			name: "stale and finished", fulfillment: order.Pickup,
			setup:      []order.Status{order.Cancelled},
			transition: order.Transition{Status: order.Cancelled, ExpectedVersion: 1},
			stale:      &order.StaleError{Expected: 1, Current: 2},
		},
		{
			name: "unknown status", fulfillment: order.Pickup,
			transition: order.Transition{Status: "eaten"},
			field:      "status",
		},
		{
			name: "long note", fulfillment: order.Pickup,
			transition: order.Transition{Status: order.Preparing, Note: strings.Repeat("n", 501)},
			field:      "note",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := t.Context()
			o := mustCreate(t, s, tt.fulfillment)
			for _, to := range tt.setup {
				o = mustMove(t, s, o.ID, to)
			}
			eventsBefore := countRows(t, db, "order_events")

			got, ev, err := s.TransitionOrder(ctx, o.ID, tt.transition)
			if got != nil || ev != nil {
				t.Errorf("refused transition returned %v, %v", got, ev)
			}
			switch {
			case tt.illegal != nil:
				var ite *order.IllegalTransitionError
				if !errors.As(err, &ite) {
					t.Fatalf("TransitionOrder: %v, want *order.IllegalTransitionError", err)
				}
				if diff := cmp.Diff(tt.illegal, ite); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			case tt.stale != nil:
				var se *order.StaleError
				if !errors.As(err, &se) || !errors.Is(err, order.ErrStale) {
					t.Fatalf("TransitionOrder: %v, want *order.StaleError", err)
				}
				if diff := cmp.Diff(tt.stale, se); diff != "" {
					t.Errorf("error (-want +got):\n%s", diff)
				}
			default:
				var fe *order.FieldError
				if !errors.As(err, &fe) || fe.Field != tt.field {
					t.Fatalf("TransitionOrder: %v, want *order.FieldError for %s", err, tt.field)
				}
			}

			after, err := s.FindOrderByID(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(o, after); diff != "" {
				t.Errorf("refused transition changed the order (-before +after):\n%s", diff)
			}
			if n := countRows(t, db, "order_events"); n != eventsBefore {
				t.Errorf("refused transition stored an event: %d rows, want %d", n, eventsBefore)
			}
		})
	}
}

func TestFindOrders(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	ctx := t.Context()

	// Oldest first: placed, preparing, delivered, cancelled, baking.
	var created []*order.Order
	for i, path := range [][]order.Status{
		nil,
		{order.Preparing},
		{order.Preparing, order.Baking, order.Ready, order.Delivered},
		{order.Cancelled},
		{order.Preparing, order.Baking},
	} {
		o := mustCreate(t, s, []order.Fulfillment{order.Pickup, order.Delivery}[i%2])
		for _, to := range path {
			o = mustMove(t, s, o.ID, to)
		}
		created = append(created, o)
	}
	ids := func(idx ...int) []string {
		var out []string
		for _, i := range idx {
			out = append(out, created[i].ID)
		}
		return out
	}

	tests := []struct {
		name   string
		filter order.Filter
		want   []string
	}{
		{"all", order.Filter{}, ids(4, 3, 2, 1, 0)},
		{"status", order.Filter{Status: order.Preparing}, ids(1)},
		{"finished status", order.Filter{Status: order.Delivered}, ids(2)},
		{"no match", order.Filter{Status: order.OutForDelivery}, nil},
		{"open", order.Filter{Open: true}, ids(4, 1, 0)},
		{"open and status", order.Filter{Open: true, Status: order.Baking}, ids(4)},
		{"open and finished status", order.Filter{Open: true, Status: order.Cancelled}, nil},
		{"limit", order.Filter{Limit: 2}, ids(4, 3)},
		{"open with limit", order.Filter{Open: true, Limit: 2}, ids(4, 1)},
		{"negative limit", order.Filter{Limit: -1}, ids(4, 3, 2, 1, 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.FindOrders(ctx, tt.filter)
			if err != nil {
				t.Fatalf("FindOrders: %v", err)
			}
			if got == nil {
				t.Error("FindOrders returned nil, want an empty slice")
			}
			var gotIDs []string
			for _, o := range got {
				gotIDs = append(gotIDs, o.ID)
				i := slices.IndexFunc(created, func(c *order.Order) bool { return c.ID == o.ID })
				want := created[i]
				if diff := cmp.Diff(want, o); diff != "" {
					t.Errorf("order %s (-want +got):\n%s", o.ID, diff)
				}
			}
			if diff := cmp.Diff(tt.want, gotIDs); diff != "" {
				t.Errorf("orders (-want +got):\n%s", diff)
			}
		})
	}

	_, err := s.FindOrders(ctx, order.Filter{Status: "eaten"})
	var fe *order.FieldError
	if !errors.As(err, &fe) || fe.Field != "status" {
		t.Errorf("FindOrders(unknown status): %v, want *order.FieldError for status", err)
	}

	open, err := s.FindOpenOrders(ctx)
	if err != nil {
		t.Fatalf("FindOpenOrders: %v", err)
	}
	if diff := cmp.Diff([]*order.Order{created[0], created[1], created[4]}, open); diff != "" {
		t.Errorf("open orders (-want +got):\n%s", diff)
	}
}

func TestFindOrdersLimits(t *testing.T) {
	t.Parallel()
	s, db := newTestStore(t)
	ctx := t.Context()

	const n = order.MaxLimit + 1
	_, err := db.ExecContext(ctx, `
		INSERT INTO orders (customer_name, phone, fulfillment, total_cents)
		SELECT 'Customer ' || i, '555 0100', 'pickup', 900 FROM generate_series(1, $1) i`, n)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		limit, want int
	}{
		{0, order.DefaultLimit},
		{7, 7},
		{order.MaxLimit, order.MaxLimit},
		{order.MaxLimit + 1, order.MaxLimit},
		{1 << 30, order.MaxLimit},
	}
	for _, tt := range tests {
		got, err := s.FindOrders(ctx, order.Filter{Limit: tt.limit})
		if err != nil {
			t.Fatalf("FindOrders(limit %d): %v", tt.limit, err)
		}
		if len(got) != tt.want {
			t.Errorf("FindOrders(limit %d): %d orders, want %d", tt.limit, len(got), tt.want)
		}
		for i := 1; i < len(got); i++ {
			if got[i].CreatedAt.After(got[i-1].CreatedAt) {
				t.Fatalf("order %d is newer than order %d", i, i-1)
			}
		}
	}

	open, err := s.FindOpenOrders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(open) != n {
		t.Errorf("FindOpenOrders returned %d orders, want all %d", len(open), n)
	}
}

// TestTransitionRaceExpectedVersion has racers move one order with the version they
// all read: each round, exactly one wins and the others are told they are stale.
func TestTransitionRaceExpectedVersion(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	ctx := t.Context()
	o := mustCreate(t, s, order.Delivery)

	const racers = 20
	path := []order.Status{
		order.Preparing, order.Baking, order.Ready, order.OutForDelivery, order.Delivered,
	}
	for round, to := range path {
		version := int64(round + 1)
		errs := make([]error, racers)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				tr := order.Transition{Status: to, ExpectedVersion: version}
				_, _, errs[i] = s.TransitionOrder(ctx, o.ID, tr)
			})
		}
		close(start)
		wg.Wait()

		wins := 0
		for _, err := range errs {
			var se *order.StaleError
			switch {
			case err == nil:
				wins++
			case errors.As(err, &se):
				if se.Expected != version || se.Current != version+1 {
					t.Errorf("round %d: %v", round, err)
				}
			default:
				t.Errorf("round %d: %v, want success or *order.StaleError", round, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d (%s): %d racers won, want 1", round, to, wins)
		}
	}

	checkHistory(t, s, o.ID, append([]order.Status{order.Placed}, path...))
}

// TestTransitionRaceCancel has racers cancel one order without an expected version:
// exactly one cancels it and the others find it already cancelled.
func TestTransitionRaceCancel(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	ctx := t.Context()
	o := mustCreate(t, s, order.Pickup)
	o = mustMove(t, s, o.ID, order.Preparing)

	const racers = 20
	errs := make([]error, racers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() {
			<-start
			_, _, errs[i] = s.TransitionOrder(ctx, o.ID, order.Transition{Status: order.Cancelled})
		})
	}
	close(start)
	wg.Wait()

	wins := 0
	for _, err := range errs {
		var ite *order.IllegalTransitionError
		switch {
		case err == nil:
			wins++
		case errors.As(err, &ite):
			if ite.From != order.Cancelled || len(ite.Allowed) != 0 {
				t.Errorf("%v: from %s, allowed %v", err, ite.From, ite.Allowed)
			}
		default:
			t.Errorf("%v, want success or *order.IllegalTransitionError", err)
		}
	}
	if wins != 1 {
		t.Errorf("%d racers cancelled the order, want 1", wins)
	}

	checkHistory(t, s, o.ID, []order.Status{order.Placed, order.Preparing, order.Cancelled})
}

// checkHistory checks that the order's events run through statuses with versions
// 1, 2, … and each previous status the one before, and that the order agrees.
func checkHistory(t *testing.T, s *Store, id string, statuses []order.Status) {
	t.Helper()
	events, err := s.FindEvents(t.Context(), id, 0)
	if err != nil {
		t.Fatalf("FindEvents: %v", err)
	}
	var got []string
	for _, ev := range events {
		prev := "<nil>"
		if ev.PreviousStatus != nil {
			prev = string(*ev.PreviousStatus)
		}
		got = append(got, fmt.Sprintf("%d %s<-%s", ev.Version, ev.Status, prev))
	}
	var want []string
	for i, st := range statuses {
		prev := "<nil>"
		if i > 0 {
			prev = string(statuses[i-1])
		}
		want = append(want, fmt.Sprintf("%d %s<-%s", i+1, st, prev))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}

	o, err := s.FindOrderByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	last := events[len(events)-1]
	if o.Version != last.Version || o.Status != last.Status || !o.UpdatedAt.Equal(last.At) {
		t.Errorf("order at %s v%d updated %v; last event %s v%d at %v",
			o.Status, o.Version, o.UpdatedAt, last.Status, last.Version, last.At)
	}
}

// TestNotify listens on the order_events channel as another replica would: every
// committed event is announced as "<order id>:<version>", refused transitions are not.
func TestNotify(t *testing.T) {
	t.Parallel()
	db, url := newTestDB(t)
	s := NewStore(db)
	ctx := t.Context()

	l := pq.NewListener(url, 10*time.Millisecond, time.Second, nil)
	t.Cleanup(func() { l.Close() })
	if err := l.Listen("order_events"); err != nil {
		t.Fatalf("Listen: %v", err)
	}

	o := mustCreate(t, s, order.Delivery)
	expectNotification(t, l, o.ID+":1")

	mustMove(t, s, o.ID, order.Preparing)
	expectNotification(t, l, o.ID+":2")

	refused := []order.Transition{
		{Status: order.Delivered},
		{Status: order.Baking, ExpectedVersion: 1},
		{Status: order.Baking, Note: strings.Repeat("n", 501)},
	}
	for _, tr := range refused {
		if _, _, err := s.TransitionOrder(ctx, o.ID, tr); err == nil {
			t.Fatalf("TransitionOrder(%+v) succeeded", tr)
		}
	}
	_, _, err := s.CreateOrder(ctx, newOrder(order.Pickup))
	if err == nil {
		t.Fatal("CreateOrder without items succeeded")
	}

	// Notifications arrive in commit order, so had a refused one been sent, it would
	// come before this one.
	mustMove(t, s, o.ID, order.Baking)
	expectNotification(t, l, o.ID+":3")
}

// expectNotification waits for the next notification and checks its payload.
func expectNotification(t *testing.T, l *pq.Listener, payload string) {
	t.Helper()
	select {
	case n := <-l.Notify:
		if n == nil {
			t.Fatal("listener reconnected; notifications may be lost")
		}
		if n.Channel != "order_events" || n.Extra != payload {
			t.Fatalf("notification %q on %q, want %q on order_events", n.Extra, n.Channel, payload)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no notification %q within 30s", payload)
	}
}

func TestStorePing(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t)
	if err := s.Ping(t.Context()); err != nil {
		t.Errorf("Ping: %v", err)
	}
}
