// Package postgres stores orders, their events and the menu in PostgreSQL through sqlx
// and lib/pq, applies the schema migrations and maps database failures to the errors of
// package order.
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"

	"github.com/orderstream/orderstream/pkg/order"
)

// Connection pool settings that do not depend on the deployment.
const (
	// connMaxIdleTime closes connections nobody used for a while, so a quiet replica
	// gives its connections back to the server.
	connMaxIdleTime = 5 * time.Minute
	// connMaxLifetime recycles every connection now and then, so that a failover or a
	// load balancer in front of the database spreads connections again.
	connMaxLifetime = 30 * time.Minute
)

// Start-up wait settings.
const (
	waitFirstDelay = 100 * time.Millisecond
	waitMaxDelay   = 2 * time.Second
	// waitPingTimeout bounds one attempt, so a database that swallows packets does not
	// use up the whole wait in a single ping.
	waitPingTimeout = 5 * time.Second
)

// DB is a pool of connections to the orderstream database.
type DB struct {
	*sqlx.DB
}

// Open connects to the database at dbURL, with at most maxOpen connections of which at
// most maxIdle stay open while idle, and pings it. A database that cannot be reached
// gives an error wrapping order.ErrUnavailable. The URL never appears in errors, since it
// may hold a password.
func Open(ctx context.Context, dbURL string, maxOpen, maxIdle int) (*DB, error) {
	sqlDB, err := openPool(dbURL)
	if err != nil {
		return nil, err
	}
	sqlDB.SetMaxOpenConns(maxOpen)
	sqlDB.SetMaxIdleConns(maxIdle)
	sqlDB.SetConnMaxIdleTime(connMaxIdleTime)
	sqlDB.SetConnMaxLifetime(connMaxLifetime)

	if err := sqlDB.PingContext(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("open database: %w", mapError(err))
	}
	return &DB{DB: sqlx.NewDb(sqlDB, "postgres")}, nil
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.PingContext(ctx); err != nil {
		return fmt.Errorf("ping database: %w", mapError(err))
	}
	return nil
}

// WaitForDB waits until the database at dbURL answers, for at most timeout. It pings
// with a growing delay between attempts (100 ms doubling up to 2 s) and logs a warning
// for each failed attempt. It gives up at once on an error that waiting cannot cure,
// such as a wrong password or an unknown database, and after timeout with an error
// wrapping order.ErrUnavailable. Neither the logs nor the error show the URL.
func WaitForDB(
	ctx context.Context, dbURL string, timeout time.Duration, logger *slog.Logger,
) error {
	sqlDB, err := openPool(dbURL)
	if err != nil {
		return fmt.Errorf("wait for database: %w", err)
	}
	defer sqlDB.Close()

	waitCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	delay := waitFirstDelay
	var lastErr error
	for attempt := 1; ; attempt++ {
		retry, err := pingOnce(waitCtx, sqlDB)
		switch {
		case err == nil:
			if attempt > 1 {
				logger.Info("Database is reachable", slog.Int("attempts", attempt))
			}
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("wait for database: %w", ctx.Err())
		case waitCtx.Err() != nil:
			if lastErr == nil {
				lastErr = fmt.Errorf("%w: %w", order.ErrUnavailable, err)
			}
			return fmt.Errorf("wait for database: gave up after %s: %w", timeout, lastErr)
		case !retry:
			return fmt.Errorf("wait for database: %w", err)
		}
		lastErr = err

		logger.Warn("Waiting for the database",
			slog.Int("attempt", attempt),
			slog.Duration("retry_in", delay),
			slog.Any("error", err),
		)
		timer := time.NewTimer(delay)
		select {
		case <-waitCtx.Done():
			timer.Stop()
		case <-timer.C:
		}
		delay = min(2*delay, waitMaxDelay)
	}
}

// pingOnce pings the database once, within waitPingTimeout, and says whether another
// attempt may cure a failure. A failure worth retrying wraps order.ErrUnavailable.
func pingOnce(ctx context.Context, sqlDB *sql.DB) (retry bool, err error) {
	pingCtx, cancel := context.WithTimeout(ctx, waitPingTimeout)
	defer cancel()

	err = sqlDB.PingContext(pingCtx)
	switch {
	case err == nil:
		return false, nil
	case pingCtx.Err() != nil && ctx.Err() == nil:
		// Only this attempt ran out of time: the database may be too busy to answer.
		return true, fmt.Errorf("%w: no answer within %s", order.ErrUnavailable, waitPingTimeout)
	}
	err = mapError(err)
	return errors.Is(err, order.ErrUnavailable), err
}

// openPool parses dbURL and returns a pool that connects with it. It connects to
// nothing yet. Parse errors leave the URL out.
func openPool(dbURL string) (*sql.DB, error) {
	connector, err := pq.NewConnector(dbURL)
	if err != nil {
		var urlErr *url.Error
		if errors.As(err, &urlErr) {
			err = urlErr.Err
		}
		return nil, fmt.Errorf("parse database url: %w", err)
	}
	return sql.OpenDB(connector), nil
}
