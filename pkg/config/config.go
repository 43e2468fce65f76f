// Package config loads orderstream's typed configuration.
//
// Values are layered, lowest to highest: the built-in defaults, the YAML
// config file, environment variables ORDERSTREAM_<KEY> (the key upper-cased,
// dots as underscores) and command-line flags named after the keys. The
// result is validated, and a bad value is reported with the key it came from.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// DefaultFile is the config file read when --config is not given, relative
// to the working directory. Unlike an explicit --config file, it may be
// missing.
const DefaultFile = "config/orderstream.yaml"

// EnvPrefix is the prefix of the environment variables that set keys.
const EnvPrefix = "ORDERSTREAM"

// configFlag names the flag that chooses the config file.
const configFlag = "config"

// demoFlag is the short alias for --demo.enabled.
const demoFlag = "demo"

// Config is the whole configuration of the service. Components receive the
// sub-struct they need, never a *viper.Viper.
type Config struct {
	HTTP     HTTP     `mapstructure:"http"`
	Database Database `mapstructure:"database"`
	SSE      SSE      `mapstructure:"sse"`
	Auth     Auth     `mapstructure:"auth"`
	Webhooks Webhooks `mapstructure:"webhooks"`
	Log      Log      `mapstructure:"log"`
	Demo     Demo     `mapstructure:"demo"`
}

// HTTP configures the HTTP server.
type HTTP struct {
	// Addr is the listen address, host:port (http.addr).
	Addr string `mapstructure:"addr"`

	// ShutdownTimeout bounds the graceful shutdown (http.shutdown_timeout).
	ShutdownTimeout time.Duration `mapstructure:"shutdown_timeout"`

	// PublicURL is the base URL used in absolute links such as tracking_url
	// (http.public_url). Empty means links are built from the request's host.
	// Load removes a trailing slash.
	PublicURL string `mapstructure:"public_url"`
}

// Database configures the PostgreSQL connection pool and listener.
type Database struct {
	// URL is the lib/pq connection string (database.url). It is required
	// and may hold a password: never log it.
	URL string `mapstructure:"url"`

	// MaxOpenConns caps open connections in the pool (database.max_open_conns).
	MaxOpenConns int `mapstructure:"max_open_conns"`

	// MaxIdleConns caps idle connections kept in the pool
	// (database.max_idle_conns). database/sql lowers it to MaxOpenConns
	// when it is larger.
	MaxIdleConns int `mapstructure:"max_idle_conns"`

	// ListenerPing is how often the LISTEN connection is checked
	// (database.listener_ping).
	ListenerPing time.Duration `mapstructure:"listener_ping"`

	// StartupTimeout is how long start-up waits for the database to become
	// reachable (database.startup_timeout).
	StartupTimeout time.Duration `mapstructure:"startup_timeout"`
}

// SSE configures the Server-Sent Events streams.
type SSE struct {
	// Heartbeat is the interval between ": ping" comments (sse.heartbeat).
	Heartbeat time.Duration `mapstructure:"heartbeat"`

	// Retry is the reconnection delay sent as "retry:" in milliseconds
	// (sse.retry). It is at least 1ms.
	Retry time.Duration `mapstructure:"retry"`

	// MaxConnections caps open streams on this replica; 0 means no limit
	// (sse.max_connections).
	MaxConnections int `mapstructure:"max_connections"`

	// WriteTimeout is the deadline for each write to a stream
	// (sse.write_timeout).
	WriteTimeout time.Duration `mapstructure:"write_timeout"`
}

// Auth configures staff authentication.
type Auth struct {
	// StaffToken is the bearer token (and Basic password) of the staff API
	// and pages (auth.staff_token). It is required, at least 8 characters,
	// and never appears in error messages or logs.
	StaffToken string `mapstructure:"staff_token"`
}

// Webhooks configures webhook delivery.
type Webhooks struct {
	// AllowPrivateTargets lets subscriptions target loopback and private
	// addresses (webhooks.allow_private_targets). For development only.
	AllowPrivateTargets bool `mapstructure:"allow_private_targets"`

	// Workers is the number of concurrent deliveries on this replica
	// (webhooks.workers).
	Workers int `mapstructure:"workers"`

	// Timeout bounds one delivery attempt (webhooks.timeout).
	Timeout time.Duration `mapstructure:"timeout"`
}

// Log configures logging.
type Log struct {
	// Level is the minimum level logged: debug, info, warn or error
	// (log.level).
	Level string `mapstructure:"level"`

	// Format is the handler: text or json (log.format).
	Format string `mapstructure:"format"`
}

// Demo configures the demo mode, a simulated kitchen that moves every open order
// along at a human pace, so a newcomer sees the tracking page work alone.
type Demo struct {
	// Enabled turns the demo on (demo.enabled, or the --demo flag).
	Enabled bool `mapstructure:"enabled"`

	// Interval is the pause between two demo steps (demo.interval).
	Interval time.Duration `mapstructure:"interval"`
}

// SlogLevel returns the slog level named by l.Level, case-insensitively.
// An unknown name (which Validate rejects) gives slog.LevelInfo.
func (l Log) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// Default returns the built-in defaults. Its Database.URL and
// Auth.StaffToken are empty, so it does not pass Validate on its own.
func Default() Config {
	return Config{
		HTTP: HTTP{
			Addr:            ":8080",
			ShutdownTimeout: 8 * time.Second,
		},
		Database: Database{
			MaxOpenConns:   20,
			MaxIdleConns:   10,
			ListenerPing:   10 * time.Second,
			StartupTimeout: 60 * time.Second,
		},
		SSE: SSE{
			Heartbeat:      15 * time.Second,
			Retry:          3 * time.Second,
			MaxConnections: 10000,
			WriteTimeout:   10 * time.Second,
		},
		Webhooks: Webhooks{
			Workers: 4,
			Timeout: 10 * time.Second,
		},
		Log: Log{
			Level:  "info",
			Format: "text",
		},
		Demo: Demo{
			Interval: 8 * time.Second,
		},
	}
}

// Flags returns a flag set named name (pflag.ContinueOnError) with --config
// and one flag per key, named after the key (--http.addr, --sse.heartbeat,
// …) and showing its default, plus --demo as a short form of
// --demo.enabled. Parse it, then hand it to Load.
func Flags(name string) *pflag.FlagSet {
	flags := pflag.NewFlagSet(name, pflag.ContinueOnError)
	def := Default()

	flags.String(configFlag, DefaultFile,
		"path of the YAML config file (a missing default file is skipped; \"\" reads none)")
	for _, k := range keys {
		usage := fmt.Sprintf("%s (env %s)", k.usage, envName(k.name))
		switch p := k.ptr(&def).(type) {
		case *string:
			flags.String(k.name, *p, usage)
		case *int:
			flags.Int(k.name, *p, usage)
		case *bool:
			flags.Bool(k.name, *p, usage)
		case *time.Duration:
			flags.Duration(k.name, *p, usage)
		default:
			panic(fmt.Sprintf("config: key %s has unsupported type %T", k.name, p))
		}
	}
	flags.Bool(demoFlag, false, "short for --demo.enabled")

	return flags
}

// Load builds the configuration from the defaults, the config file, the
// environment and the flags that were set on the command line, then
// validates it. flags must already be parsed (Load parses nothing itself) and
// may be nil, which means no flags. The file is the --config value when that
// flag was set (it must then exist; an empty value reads no file), else
// DefaultFile if it exists.
func Load(flags *pflag.FlagSet) (*Config, error) {
	v := viper.New()
	def := Default()
	for _, k := range keys {
		v.SetDefault(k.name, k.get(&def))
	}

	if err := readFile(v, flags); err != nil {
		return nil, err
	}

	// AutomaticEnv is consulted for every key viper knows of, which is why
	// every key has a default above.
	v.SetEnvPrefix(EnvPrefix)
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_"))
	v.AutomaticEnv()

	applyFlags(v, flags)

	if err := checkUnknown(v); err != nil {
		return nil, err
	}

	c, err := decode(v)
	if err != nil {
		return nil, err
	}
	c.HTTP.PublicURL = strings.TrimRight(c.HTTP.PublicURL, "/")

	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// decode turns the layered values of v into a Config.
//
// It reads each key with v.Get rather than calling v.Unmarshal: Unmarshal
// works from AllSettings, where an empty section in the file (auth: with its
// keys commented out, as shipped) replaces the whole section and hides the
// environment's auth.staff_token.
func decode(v *viper.Viper) (*Config, error) {
	settings := make(map[string]any)
	for _, k := range keys {
		section, leaf, _ := strings.Cut(k.name, ".")
		m, ok := settings[section].(map[string]any)
		if !ok {
			m = make(map[string]any)
			settings[section] = m
		}
		m[leaf] = v.Get(k.name)
	}

	var c Config
	d, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		DecodeHook:       decodeHook,
		WeaklyTypedInput: true,
		ErrorUnused:      true,
		Result:           &c,
	})
	if err != nil {
		return nil, fmt.Errorf("config: decode: %w", err)
	}
	if err := d.Decode(settings); err != nil {
		return nil, decodeErrors(v, err)
	}
	return &c, nil
}

// readFile reads the config file chosen by flags into v, if there is one.
func readFile(v *viper.Viper, flags *pflag.FlagSet) error {
	path, explicit := DefaultFile, false
	if f := lookup(flags, configFlag); f != nil {
		path, explicit = f.Value.String(), f.Changed
	}
	if path == "" {
		return nil
	}

	if _, err := os.Stat(path); err != nil {
		if !explicit && errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("config: read %s: %w", path, err)
	}

	v.SetConfigFile(path)
	if filepath.Ext(path) == "" {
		v.SetConfigType("yaml")
	}
	if err := v.ReadInConfig(); err != nil {
		return fmt.Errorf("config: read %s: %w", path, err)
	}
	return nil
}

// applyFlags sets in v, above every other layer, the flags that were
// given on the command line. Flags left at their defaults are ignored, so
// they do not hide the file and the environment.
func applyFlags(v *viper.Viper, flags *pflag.FlagSet) {
	// --demo.enabled is applied after --demo, so the long form wins.
	if f := lookup(flags, demoFlag); f != nil && f.Changed {
		v.Set("demo.enabled", f.Value.String())
	}
	for _, k := range keys {
		if f := lookup(flags, k.name); f != nil && f.Changed {
			v.Set(k.name, f.Value.String())
		}
	}
}

// lookup is FlagSet.Lookup that accepts a nil flag set.
func lookup(flags *pflag.FlagSet, name string) *pflag.Flag {
	if flags == nil {
		return nil
	}
	return flags.Lookup(name)
}
