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

	"github.com/lib/pq"
	"github.com/lib/pq/pqerror"

	"github.com/orderstream/orderstream/pkg/order"
)

// mapError translates a database error into the errors of package order: a failure to
// reach or keep talking to the server becomes order.ErrUnavailable (still wrapping the
// cause), and sql.ErrNoRows becomes order.ErrNotFound. A cancelled or expired context
// and every other error pass through unchanged, as does nil.
func mapError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, order.ErrUnavailable), errors.Is(err, order.ErrNotFound):
		return err
	case errors.Is(err, sql.ErrNoRows):
		return order.ErrNotFound
	case isConnectionFailure(err):
		return fmt.Errorf("%w: %w", order.ErrUnavailable, err)
	}
	return err
}

// isConnectionFailure reports whether err says that the server could not be reached,
// dropped the connection, or refuses connections for now.
func isConnectionFailure(err error) bool {
	var netErr net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn):
		return true
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET):
		return true
	case errors.As(err, &netErr):
		return true
	}

	pqErr := pq.As(err)
	if pqErr == nil {
		return false
	}
	if pqErr.Fatal() && pqErr.Code == pqerror.ObjectNotInPrerequisiteState {
		// "database is not currently accepting connections" (ALLOW_CONNECTIONS false).
		return true
	}
	switch pqErr.Code {
	case pqerror.AdminShutdown, pqerror.CrashShutdown, pqerror.CannotConnectNow,
		pqerror.TooManyConnections:
		return true
	}
	return pqErr.Code.Class() == pqerror.ClassConnectionException
}
