package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/orderstream/orderstream/pkg/config"
	"github.com/orderstream/orderstream/pkg/demo"
	"github.com/orderstream/orderstream/pkg/metrics"
	"github.com/orderstream/orderstream/pkg/order"
	"github.com/orderstream/orderstream/pkg/postgres"
	"github.com/orderstream/orderstream/pkg/server"
	"github.com/orderstream/orderstream/pkg/stream"
	"github.com/orderstream/orderstream/pkg/webhook"
)

// openDB waits for the database, connects and applies pending migrations.
func openDB(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*postgres.DB, error) {
	logger.Info("Connecting to the database")
	d := cfg.Database
	if err := postgres.WaitForDB(ctx, d.URL, d.StartupTimeout, logger); err != nil {
		return nil, err
	}
	db, err := postgres.Open(ctx, d.URL, d.MaxOpenConns, d.MaxIdleConns)
	if err != nil {
		return nil, err
	}
	if err := postgres.Migrate(ctx, db.DB.DB, logger); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

func migrate(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return db.Close()
}

// serve runs the service until ctx is cancelled, then shuts it down gracefully.
func serve(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	logger.Info("Starting orderstream", "version", version)
	db, err := openDB(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer func() {
		db.Close()
		logger.Info("Database closed")
	}()

	m := metrics.New()
	m.WatchDB(db.DB.DB)
	store := postgres.NewStore(db)
	hooks := postgres.NewWebhookStore(db)
	dispatcher := webhook.NewDispatcher(hooks, webhook.Options{
		Workers:             cfg.Webhooks.Workers,
		Timeout:             cfg.Webhooks.Timeout,
		AllowPrivateTargets: cfg.Webhooks.AllowPrivateTargets,
	}, logger, m)
	hub := stream.NewHub()
	listener := postgres.NewListener(cfg.Database.URL, store, countingFanout{hub, m},
		cfg.Database.ListenerPing, logger, pokingObserver{m, dispatcher})
	streams := stream.NewServer(stream.Options{
		Retry:          cfg.SSE.Retry,
		Heartbeat:      cfg.SSE.Heartbeat,
		WriteTimeout:   cfg.SSE.WriteTimeout,
		MaxConnections: cfg.SSE.MaxConnections,
		Observer:       m,
	}, logger)
	srv := server.New(store, server.Options{
		StaffToken:          cfg.Auth.StaffToken,
		PublicURL:           cfg.HTTP.PublicURL,
		Hub:                 hub,
		Streams:             streams,
		Listening:           listener.Connected,
		Metrics:             m.Handler(),
		Observer:            m,
		Webhooks:            hooks,
		AllowPrivateTargets: cfg.Webhooks.AllowPrivateTargets,
		Logger:              logger,
	})

	ln, err := net.Listen("tcp", cfg.HTTP.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP.Addr, err)
	}
	httpSrv := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// Shutdown waits for running handlers, and a stream never ends by itself.
	httpSrv.RegisterOnShutdown(func() {
		logger.Info("Ending open streams", "open", streams.Open())
		if err := streams.Shutdown(context.Background()); err != nil {
			logger.Warn("Streams did not end", "error", err)
		}
	})

	bg, stopBackground := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	background := func(name string, run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(bg); err != nil {
				logger.Error("Background task stopped", "task", name, "error", err)
			}
		}()
	}
	background("listener", listener.Run)
	background("webhooks", dispatcher.Run)
	if cfg.Demo.Enabled {
		logger.Info("Demo kitchen on", "interval", cfg.Demo.Interval)
		background("demo", demo.New(store, cfg.Demo.Interval, logger).Run)
	}

	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	logger.Info("Listening", "addr", ln.Addr().String())

	select {
	case err := <-serveErr:
		stopBackground()
		wg.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}

	logger.Info("Shutting down", "timeout", cfg.HTTP.ShutdownTimeout)
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP server did not drain in time; closing connections", "error", err)
		_ = httpSrv.Close()
	}
	logger.Info("HTTP server stopped")
	stopBackground()
	wg.Wait()
	logger.Info("Background tasks stopped")
	if err := <-serveErr; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// countingFanout counts the events the listener hands to the hub.
type countingFanout struct {
	*stream.Hub
	m *metrics.Metrics
}

func (f countingFanout) Publish(ev order.Event) {
	f.m.EventPublished()
	f.Hub.Publish(ev)
}

// pokingObserver counts listener activity and wakes the webhook dispatcher on each
// notification, so that deliveries go out at once rather than at its next poll.
type pokingObserver struct {
	*metrics.Metrics
	d *webhook.Dispatcher
}

func (o pokingObserver) NotificationReceived() {
	o.Metrics.NotificationReceived()
	o.d.Poke()
}
