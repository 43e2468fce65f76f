package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	migrations "github.com/orderstream/orderstream/sql"
)

// migrateLockTimeout is how long, in seconds, a migration run waits for another
// replica's run to finish; it probes the lock every second.
const migrateLockTimeout = 300

// Migrate applies the pending migrations of package sql, in order, and logs each one.
// It holds a PostgreSQL advisory lock for the whole run, so replicas that start together
// take turns and the later ones find nothing left to do.
func Migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, migrateLockTimeout))
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations.FS,
		goose.WithSessionLocker(locker),
		goose.WithSlog(logger),
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	results, err := provider.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		results = partial.Applied
	}
	for _, r := range results {
		logger.Info("Applied migration",
			slog.Int64("version", r.Source.Version),
			slog.String("file", r.Source.Path),
			slog.Duration("duration", r.Duration),
		)
	}
	if err != nil {
		return fmt.Errorf("migrate: %w", mapError(err))
	}

	version, err := provider.GetDBVersion(ctx)
	if err != nil {
		return fmt.Errorf("migrate: read schema version: %w", mapError(err))
	}
	logger.Info("Database schema is up to date",
		slog.Int64("version", version),
		slog.Int("applied", len(results)),
	)
	return nil
}
