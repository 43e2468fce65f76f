package config

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-viper/mapstructure/v2"
	"github.com/spf13/viper"
)

// key describes one configuration key: where it lives in Config, what a
// valid value is and how the flag describes it. The keys table drives the
// defaults, the flags, decoding errors and Validate, so a key added to
// Config must be added here too (a test checks that).
type key struct {
	name  string
	usage string // one line for the flag's help
	rule  string // what a valid value is, as in "must be a positive duration"

	// required keys have no default; an empty value is reported as missing.
	required bool
	// secret keys never have their value echoed in a message.
	secret bool

	ptr   func(*Config) any  // pointer to the field
	get   func(*Config) any  // the field's value
	valid func(*Config) bool // whether the field's value is acceptable
}

// newKey describes the key name stored in the field that field points to.
// A nil valid accepts any value.
func newKey[T any](name string, field func(*Config) *T, valid func(T) bool,
	rule, usage string) key {
	return key{
		name:  name,
		usage: usage,
		rule:  rule,
		ptr:   func(c *Config) any { return field(c) },
		get:   func(c *Config) any { return *field(c) },
		valid: func(c *Config) bool { return valid == nil || valid(*field(c)) },
	}
}

// secretKey marks k as required and secret.
func secretKey(k key) key {
	k.required = true
	k.secret = true
	return k
}

const (
	rulePositiveDuration = "must be a positive duration"
	rulePositiveInt      = "must be a positive integer"
	ruleBool             = "must be true or false"
)

// keys lists every configuration key, in the order of the shipped file.
var keys = []key{
	newKey("http.addr", func(c *Config) *string { return &c.HTTP.Addr },
		validAddr, `must be host:port such as ":8080"`,
		"address the HTTP server listens on, host:port"),
	newKey("http.shutdown_timeout",
		func(c *Config) *time.Duration { return &c.HTTP.ShutdownTimeout },
		positive, rulePositiveDuration,
		"how long a graceful shutdown may take"),
	newKey("http.public_url", func(c *Config) *string { return &c.HTTP.PublicURL },
		validPublicURL,
		"must be empty or an absolute http or https URL such as https://pizza.example",
		"base URL of absolute links such as tracking_url; empty for relative links"),

	secretKey(newKey("database.url", func(c *Config) *string { return &c.Database.URL },
		func(s string) bool { return s != "" },
		"a PostgreSQL URL such as "+
			"postgres://user:password@localhost:5432/orderstream?sslmode=disable",
		"PostgreSQL connection URL (prefer the environment: flags show in process lists)")),
	newKey("database.max_open_conns", func(c *Config) *int { return &c.Database.MaxOpenConns },
		positive, rulePositiveInt,
		"maximum open database connections"),
	newKey("database.max_idle_conns", func(c *Config) *int { return &c.Database.MaxIdleConns },
		nonNegative, "must be a non-negative integer",
		"maximum idle database connections"),
	newKey("database.listener_ping",
		func(c *Config) *time.Duration { return &c.Database.ListenerPing },
		positive, rulePositiveDuration,
		"interval between checks of the LISTEN connection"),
	newKey("database.startup_timeout",
		func(c *Config) *time.Duration { return &c.Database.StartupTimeout },
		positive, rulePositiveDuration,
		"how long start-up waits for the database to be reachable"),

	newKey("sse.heartbeat", func(c *Config) *time.Duration { return &c.SSE.Heartbeat },
		positive, rulePositiveDuration,
		"interval between keep-alive comments on open streams"),
	newKey("sse.retry", func(c *Config) *time.Duration { return &c.SSE.Retry },
		func(d time.Duration) bool { return d >= time.Millisecond },
		"must be a duration of at least 1ms",
		"reconnection delay sent to clients in the retry: field"),
	newKey("sse.max_connections", func(c *Config) *int { return &c.SSE.MaxConnections },
		nonNegative, "must be a non-negative integer (0 means no limit)",
		"maximum open streams on this replica; 0 for no limit"),
	newKey("sse.write_timeout", func(c *Config) *time.Duration { return &c.SSE.WriteTimeout },
		positive, rulePositiveDuration,
		"deadline of each write to a stream"),

	secretKey(newKey("auth.staff_token", func(c *Config) *string { return &c.Auth.StaffToken },
		validToken, "must be at least 8 characters, without spaces or control characters",
		"bearer token of the staff API and pages (prefer the environment)")),

	newKey("webhooks.allow_private_targets",
		func(c *Config) *bool { return &c.Webhooks.AllowPrivateTargets },
		nil, ruleBool,
		"allow webhook targets on loopback and private addresses"),
	newKey("webhooks.workers", func(c *Config) *int { return &c.Webhooks.Workers },
		positive, rulePositiveInt,
		"concurrent webhook deliveries on this replica"),
	newKey("webhooks.timeout", func(c *Config) *time.Duration { return &c.Webhooks.Timeout },
		positive, rulePositiveDuration,
		"timeout of one webhook delivery attempt"),

	newKey("log.level", func(c *Config) *string { return &c.Log.Level },
		oneOf("debug", "info", "warn", "error"), "must be one of debug, info, warn, error",
		"minimum log level: debug, info, warn or error"),
	newKey("log.format", func(c *Config) *string { return &c.Log.Format },
		oneOf("text", "json"), "must be text or json",
		"log format: text or json"),

	newKey("demo.enabled", func(c *Config) *bool { return &c.Demo.Enabled },
		nil, ruleBool,
		"run a simulated kitchen that moves open orders along"),
	newKey("demo.interval", func(c *Config) *time.Duration { return &c.Demo.Interval },
		positive, rulePositiveDuration,
		"pause between two demo steps"),
}

// keyByName indexes keys by name.
var keyByName = func() map[string]key {
	m := make(map[string]key, len(keys))
	for _, k := range keys {
		m[k.name] = k
	}
	return m
}()

// Validate reports every value of c that is out of range, one line per key,
// each naming the key. Secret values are never included.
func (c *Config) Validate() error {
	var errs []error
	for _, k := range keys {
		if !k.valid(c) {
			errs = append(errs, k.problem(k.get(c)))
		}
	}
	return errors.Join(errs...)
}

// problem describes the unacceptable value of k.
func (k key) problem(value any) error {
	got := fmt.Sprint(value)
	if value == nil {
		got = ""
	}

	switch {
	case k.required && got == "":
		return fmt.Errorf("config: %s: required; set it through %s (%s)",
			k.name, envName(k.name), k.rule)
	case k.secret:
		return fmt.Errorf("config: %s: %s", k.name, k.rule)
	default:
		return fmt.Errorf("config: %s: %s, got %q", k.name, k.rule, got)
	}
}

// envName is the environment variable that sets the key name.
func envName(name string) string {
	return EnvPrefix + "_" + strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
}

// checkUnknown rejects keys viper holds that Config has no field for. Only
// the config file can bring them, usually through a typo that would
// otherwise be silently ignored.
func checkUnknown(v *viper.Viper) error {
	names := v.AllKeys()
	sort.Strings(names)

	var errs []error
	for _, name := range names {
		if _, ok := keyByName[name]; ok {
			continue
		}

		// A section whose keys are all commented out, like auth in the
		// shipped file, is an empty YAML value and harmless.
		if isSection(name) {
			if _, ok := v.Get(name).(map[string]any); !ok {
				errs = append(errs, fmt.Errorf("config: %s: must be a section of keys, in %s",
					name, v.ConfigFileUsed()))
			}
			continue
		}
		errs = append(errs,
			fmt.Errorf("config: %s: unknown key in %s", name, v.ConfigFileUsed()))
	}
	return errors.Join(errs...)
}

// isSection reports whether name is the section part of some key, like sse
// in sse.heartbeat.
func isSection(name string) bool {
	for _, k := range keys {
		if strings.HasPrefix(k.name, name+".") {
			return true
		}
	}
	return false
}

var durationType = reflect.TypeFor[time.Duration]()

// decodeHook is stricter than viper's default about numbers: a duration
// must carry its unit (a bare 15 in YAML would otherwise mean 15ns), and an
// integer may not have a fraction (which would otherwise be truncated).
func decodeHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to == durationType {
		switch d := data.(type) {
		case time.Duration:
			return d, nil
		case string:
			return time.ParseDuration(strings.TrimSpace(d))
		default:
			return nil, fmt.Errorf("%v is not a duration with a unit", data)
		}
	}

	if to.Kind() == reflect.Int {
		switch n := data.(type) {
		case string:
			return strconv.Atoi(strings.TrimSpace(n))
		case float64:
			if n != math.Trunc(n) || math.Abs(n) > 1<<53 {
				return nil, fmt.Errorf("%v is not an integer", n)
			}
			return int(n), nil
		}
	}
	return data, nil
}

// decodeErrors turns the error of decoding v into one error per key, in the
// same words as Validate. The decoder's own text is dropped: it can quote a
// secret value.
func decodeErrors(v *viper.Viper, err error) error {
	named := decodeFailures(err)
	if len(named) == 0 {
		return fmt.Errorf("config: decode: %w", err)
	}

	errs := make([]error, 0, len(named))
	for _, de := range named {
		k, ok := keyByName[de.Name()]
		if !ok {
			errs = append(errs, fmt.Errorf("config: %s: cannot decode value", de.Name()))
			continue
		}
		errs = append(errs, k.problem(v.Get(k.name)))
	}
	return errors.Join(errs...)
}

// decodeFailures returns the innermost mapstructure errors of the tree err,
// which are the ones naming a leaf key such as "sse.heartbeat".
func decodeFailures(err error) []*mapstructure.DecodeError {
	switch e := err.(type) {
	case *mapstructure.DecodeError:
		if inner := decodeFailures(e.Unwrap()); len(inner) > 0 {
			return inner
		}
		return []*mapstructure.DecodeError{e}
	case interface{ Unwrap() []error }:
		var all []*mapstructure.DecodeError
		for _, x := range e.Unwrap() {
			all = append(all, decodeFailures(x)...)
		}
		return all
	case interface{ Unwrap() error }:
		return decodeFailures(e.Unwrap())
	default:
		return nil
	}
}

// positive reports whether n is above zero.
func positive[T int | time.Duration](n T) bool { return n > 0 }

// nonNegative reports whether n is zero or above.
func nonNegative(n int) bool { return n >= 0 }

// oneOf returns a check that a string is one of names, ignoring case.
func oneOf(names ...string) func(string) bool {
	return func(s string) bool {
		for _, n := range names {
			if strings.EqualFold(s, n) {
				return true
			}
		}
		return false
	}
}

// validAddr reports whether s is a listen address with a port.
func validAddr(s string) bool {
	_, port, err := net.SplitHostPort(s)
	return err == nil && port != ""
}

// validPublicURL reports whether s is empty or an absolute http(s) URL
// without credentials, query or fragment.
func validPublicURL(s string) bool {
	if s == "" {
		return true
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// validToken reports whether s can serve as a bearer token: long enough to
// resist guessing, with nothing that breaks an Authorization header.
func validToken(s string) bool {
	if utf8.RuneCountInString(s) < 8 || !utf8.ValidString(s) {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}) < 0
}
