// Command orderstream serves a pizzeria's orders and streams every status change to
// the customers and staff who watch them.
//
// Usage:
//
//	orderstream [serve] [flags]   run the service (the default)
//	orderstream migrate [flags]   apply pending database migrations and exit
//	orderstream healthcheck       exit 0 when the local server answers /readyz
//	orderstream version           print the version
//
// Configuration comes from built-in defaults, config/orderstream.yaml (or --config),
// ORDERSTREAM_* environment variables and flags, in rising order of precedence;
// `orderstream --help` lists the flags.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/pflag"

	"github.com/orderstream/orderstream/pkg/config"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "orderstream:", err)
		os.Exit(1)
	}
}

// run parses the command line and runs the chosen command until ctx is cancelled.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	command := "serve"
	if len(args) > 0 && !isFlag(args[0]) {
		command, args = args[0], args[1:]
	}
	switch command {
	case "serve", "migrate", "healthcheck":
	case "version":
		fmt.Fprintln(stdout, "orderstream", version)
		return nil
	case "help":
		args = []string{"--help"}
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate or version)", command)
	}

	flags := config.Flags("orderstream")
	flags.SetOutput(stderr)
	flags.Usage = func() { usage(stderr, flags) }
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return nil
		}
		return err
	}
	cfg, err := config.Load(flags)
	if err != nil {
		return err
	}

	logger := newLogger(cfg.Log, stderr)
	slog.SetDefault(logger)
	switch command {
	case "migrate":
		return migrate(ctx, cfg, logger)
	case "healthcheck":
		return healthcheck(ctx, cfg.HTTP.Addr)
	}
	return serve(ctx, cfg, logger)
}

func isFlag(arg string) bool {
	return len(arg) > 0 && arg[0] == '-'
}

func usage(w io.Writer, flags *pflag.FlagSet) {
	fmt.Fprintf(w, `orderstream %s: live order tracking for a pizzeria

Usage:
  orderstream [serve] [flags]   run the service (the default)
  orderstream migrate [flags]   apply pending database migrations and exit
  orderstream healthcheck       exit 0 when the local server answers /readyz
  orderstream version           print the version

Every flag can also be set in the config file or as ORDERSTREAM_<KEY>
(the key upper-cased, dots as underscores).

Flags:
%s`, version, flags.FlagUsages())
}

func newLogger(c config.Log, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.SlogLevel()}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
