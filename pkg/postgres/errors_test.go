package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/lib/pq"

	"github.com/orderstream/orderstream/pkg/order"
)

func TestMapError(t *testing.T) {
	t.Parallel()

	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	tests := []struct {
		name        string
		err         error
		unavailable bool
		notFound    bool
	}{
		{name: "bad connection", err: driver.ErrBadConn, unavailable: true},
		{name: "EOF", err: io.EOF, unavailable: true},
		{name: "unexpected EOF", err: fmt.Errorf("x: %w", io.ErrUnexpectedEOF), unavailable: true},
		{name: "dial refused", err: refused, unavailable: true},
		{name: "refused errno", err: fmt.Errorf("x: %w", syscall.ECONNREFUSED), unavailable: true},
		{name: "connection failure 08006", err: &pq.Error{Code: "08006"}, unavailable: true},
		{name: "cannot connect 08001", err: &pq.Error{Code: "08001"}, unavailable: true},
		{name: "admin shutdown", err: &pq.Error{Code: "57P01"}, unavailable: true},
		{name: "crash shutdown", err: &pq.Error{Code: "57P02"}, unavailable: true},
		{name: "starting up", err: &pq.Error{Code: "57P03"}, unavailable: true},
		{name: "too many connections", err: &pq.Error{Code: "53300"}, unavailable: true},
		{name: "no rows", err: sql.ErrNoRows, notFound: true},
		{name: "wrapped no rows", err: fmt.Errorf("get: %w", sql.ErrNoRows), notFound: true},
		{name: "unique violation", err: &pq.Error{Code: "23505"}},
		{name: "invalid text", err: &pq.Error{Code: "22P02"}},
		{name: "serialization failure", err: &pq.Error{Code: "40001"}},
		{name: "deadline", err: context.DeadlineExceeded},
		{name: "canceled", err: fmt.Errorf("query: %w", context.Canceled)},
		{name: "other", err: errors.New("boom")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mapError(tt.err)
			if errors.Is(got, order.ErrUnavailable) != tt.unavailable {
				t.Errorf("mapError(%v) = %v; errors.Is ErrUnavailable = %t, want %t",
					tt.err, got, !tt.unavailable, tt.unavailable)
			}
			if errors.Is(got, order.ErrNotFound) != tt.notFound {
				t.Errorf("mapError(%v) = %v; errors.Is ErrNotFound = %t, want %t",
					tt.err, got, !tt.notFound, tt.notFound)
			}
			if !tt.notFound && !errors.Is(got, tt.err) {
				t.Errorf("mapError(%v) = %v, which lost the cause", tt.err, got)
			}
		})
	}

	if got := mapError(nil); got != nil {
		t.Errorf("mapError(nil) = %v, want nil", got)
	}
}

// TestMapErrorTerminated checks the mapping on a real connection that the server ends
// in the middle of a transaction.
func TestMapErrorTerminated(t *testing.T) {
	t.Parallel()
	db, _ := newTestDB(t)
	ctx := t.Context()

	tx, err := db.BeginTxx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var pid int
	if err := tx.GetContext(ctx, &pid, "SELECT pg_backend_pid()"); err != nil {
		t.Fatal(err)
	}

	// With a timeout, pg_terminate_backend waits until the backend has gone.
	var gone bool
	if err := db.GetContext(ctx, &gone, "SELECT pg_terminate_backend($1, 10000)", pid); err != nil {
		t.Fatal(err)
	}
	if !gone {
		t.Fatalf("backend %d still running", pid)
	}

	_, err = tx.ExecContext(ctx, "SELECT 1")
	if err == nil {
		t.Fatal("query on a terminated connection succeeded")
	}
	if got := mapError(err); !errors.Is(got, order.ErrUnavailable) {
		t.Errorf("mapError(%v) = %v, want it to wrap order.ErrUnavailable", err, got)
	}
}
