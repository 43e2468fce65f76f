package config

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

const (
	testURL   = "postgres://orderstream:pw@localhost:5432/orderstream?sslmode=disable"
	testToken = "staff-token-123"
)

// shippedFile is the config file of the repository, from this package's
// directory.
var shippedFile = filepath.Join("..", "..", "config", "orderstream.yaml")

// isolate clears every ORDERSTREAM_ variable of the test process and moves
// the test into an empty directory, so neither the caller's environment nor
// a config file in the working directory leaks in.
func isolate(t *testing.T) {
	t.Helper()

	for _, k := range keys {
		name := envName(k.name)
		t.Setenv(name, "")
		if err := os.Unsetenv(name); err != nil {
			t.Fatalf("unset %s: %v", name, err)
		}
	}
	t.Chdir(t.TempDir())
}

// setRequired sets the keys that have no default through the environment.
func setRequired(t *testing.T) {
	t.Helper()
	t.Setenv("ORDERSTREAM_DATABASE_URL", testURL)
	t.Setenv("ORDERSTREAM_AUTH_STAFF_TOKEN", testToken)
}

// withRequired returns the defaults plus the values setRequired sets.
func withRequired() Config {
	c := Default()
	c.Database.URL = testURL
	c.Auth.StaffToken = testToken
	return c
}

// writeFile writes a config file into a fresh directory and returns its path.
func writeFile(t *testing.T, name, text string) string {
	t.Helper()

	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatalf("write %s: %v", path, err)
	}
	return path
}

// load parses args with the flag set of Flags and loads the configuration.
func load(args ...string) (*Config, error) {
	fs := Flags("orderstream")
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	return Load(fs)
}

func TestLoadDefaults(t *testing.T) {
	isolate(t)
	setRequired(t)

	want := withRequired()
	for name, loadFunc := range map[string]func() (*Config, error){
		"nil flag set":   func() (*Config, error) { return Load(nil) },
		"no arguments":   func() (*Config, error) { return load() },
		"missing file":   func() (*Config, error) { return load("--sse.heartbeat=15s") },
		"no file at all": func() (*Config, error) { return load("--config=") },
	} {
		t.Run(name, func(t *testing.T) {
			got, err := loadFunc()
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadLayers(t *testing.T) {
	const file = `
http:
  addr: ":9000"
  public_url: "https://pizza.example/"
sse:
  heartbeat: 20s
  retry: 500ms
  max_connections: 50
log:
  level: warn
demo:
  interval: 1m
`
	tests := []struct {
		name string
		file string // written to the default path when not empty
		env  map[string]string
		args []string
		want func(c *Config)
	}{
		{
			name: "file overrides defaults",
			file: file,
			want: func(c *Config) {
				c.HTTP.Addr = ":9000"
				c.HTTP.PublicURL = "https://pizza.example"
				c.SSE.Heartbeat = 20 * time.Second
				c.SSE.Retry = 500 * time.Millisecond
				c.SSE.MaxConnections = 50
				c.Log.Level = "warn"
				c.Demo.Interval = time.Minute
			},
		},
		{
			name: "env overrides file",
			file: file,
			env: map[string]string{
				"ORDERSTREAM_HTTP_ADDR":                      "127.0.0.1:9100",
				"ORDERSTREAM_SSE_HEARTBEAT":                  "250ms",
				"ORDERSTREAM_SSE_MAX_CONNECTIONS":            "0",
				"ORDERSTREAM_WEBHOOKS_WORKERS":               "9",
				"ORDERSTREAM_WEBHOOKS_TIMEOUT":               "1m30s",
				"ORDERSTREAM_LOG_FORMAT":                     "json",
				"ORDERSTREAM_DEMO_ENABLED":                   "true",
				"ORDERSTREAM_DATABASE_LISTENER_PING":         "2s",
				"ORDERSTREAM_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "1",
			},
			want: func(c *Config) {
				c.HTTP.Addr = "127.0.0.1:9100"
				c.HTTP.PublicURL = "https://pizza.example"
				c.SSE.Heartbeat = 250 * time.Millisecond
				c.SSE.Retry = 500 * time.Millisecond
				c.SSE.MaxConnections = 0
				c.Webhooks.Workers = 9
				c.Webhooks.Timeout = 90 * time.Second
				c.Log.Level = "warn"
				c.Log.Format = "json"
				c.Demo.Enabled = true
				c.Demo.Interval = time.Minute
				c.Database.ListenerPing = 2 * time.Second
				c.Webhooks.AllowPrivateTargets = true
			},
		},
		{
			name: "flag overrides env",
			file: file,
			env: map[string]string{
				"ORDERSTREAM_HTTP_ADDR":     "127.0.0.1:9100",
				"ORDERSTREAM_SSE_HEARTBEAT": "250ms",
				"ORDERSTREAM_LOG_LEVEL":     "error",
			},
			args: []string{
				"--http.addr=:9200",
				"--sse.heartbeat", "2s",
				"--database.url=postgres://flag@localhost/db",
				"--auth.staff_token=flag-token-456",
			},
			want: func(c *Config) {
				c.HTTP.Addr = ":9200"
				c.HTTP.PublicURL = "https://pizza.example"
				c.SSE.Heartbeat = 2 * time.Second
				c.SSE.Retry = 500 * time.Millisecond
				c.SSE.MaxConnections = 50
				c.Log.Level = "error"
				c.Demo.Interval = time.Minute
				c.Database.URL = "postgres://flag@localhost/db"
				c.Auth.StaffToken = "flag-token-456"
			},
		},
		{
			name: "flags left at their defaults do not hide env",
			env:  map[string]string{"ORDERSTREAM_SSE_RETRY": "1ms"},
			args: []string{"--log.level=debug"},
			want: func(c *Config) {
				c.SSE.Retry = time.Millisecond
				c.Log.Level = "debug"
			},
		},
		{
			name: "demo short flag",
			args: []string{"--demo"},
			want: func(c *Config) { c.Demo.Enabled = true },
		},
		{
			name: "long demo flag wins over the short one",
			args: []string{"--demo", "--demo.enabled=false"},
			want: func(c *Config) {},
		},
		{
			name: "sub-second durations and case-insensitive level",
			env: map[string]string{
				"ORDERSTREAM_SSE_WRITE_TIMEOUT": " 750ms ",
				"ORDERSTREAM_LOG_LEVEL":         "DEBUG",
			},
			args: []string{"--http.shutdown_timeout=1500ms", "--demo.interval=100ms"},
			want: func(c *Config) {
				c.SSE.WriteTimeout = 750 * time.Millisecond
				c.Log.Level = "DEBUG"
				c.HTTP.ShutdownTimeout = 1500 * time.Millisecond
				c.Demo.Interval = 100 * time.Millisecond
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			setRequired(t)
			if tt.file != "" {
				if err := os.MkdirAll("config", 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(DefaultFile, []byte(tt.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for k, v := range tt.env {
				t.Setenv(k, v)
			}

			got, err := load(tt.args...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}

			want := withRequired()
			tt.want(&want)
			if diff := cmp.Diff(want, *got); diff != "" {
				t.Errorf("config mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestLoadExplicitFile(t *testing.T) {
	isolate(t)
	setRequired(t)

	// A default file that must be ignored when --config is given.
	if err := os.MkdirAll("config", 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(DefaultFile, []byte("sse:\n  heartbeat: 1s\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	yamlFile := writeFile(t, "a.yaml", "sse:\n  heartbeat: 2s\n")
	bareFile := writeFile(t, "b", "sse:\n  heartbeat: 3s\n")
	jsonFile := writeFile(t, "c.json", `{"sse": {"heartbeat": "4s"}}`)

	tests := []struct {
		name string
		args []string
		want time.Duration
	}{
		{"default file", nil, time.Second},
		{"yaml file", []string{"--config", yamlFile}, 2 * time.Second},
		{"file without extension", []string{"--config", bareFile}, 3 * time.Second},
		{"json file", []string{"--config=" + jsonFile}, 4 * time.Second},
		{"empty path reads no file", []string{"--config="}, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := load(tt.args...)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if got.SSE.Heartbeat != tt.want {
				t.Errorf("sse.heartbeat = %v, want %v", got.SSE.Heartbeat, tt.want)
			}
		})
	}
}

func TestLoadBadValue(t *testing.T) {
	tests := []struct {
		key   string
		value string
		want  string // in the error, after "config: <key>: "
	}{
		{"http.addr", "8080", `must be host:port such as ":8080", got "8080"`},
		{"http.addr", "", "must be host:port"},
		{"http.shutdown_timeout", "0s", `must be a positive duration, got "0s"`},
		{"http.shutdown_timeout", "8", `must be a positive duration, got "8"`},
		{"http.public_url", "ftp://pizza.example", "must be empty or an absolute http"},
		{"http.public_url", "pizza.example", "must be empty or an absolute http"},
		{"http.public_url", "https://pizza.example/?a=b", "must be empty or an absolute http"},
		{"database.max_open_conns", "0", `must be a positive integer, got "0"`},
		{"database.max_open_conns", "many", `must be a positive integer, got "many"`},
		{"database.max_idle_conns", "-1", `must be a non-negative integer, got "-1"`},
		{"database.max_idle_conns", "1.5", `must be a non-negative integer, got "1.5"`},
		{"database.listener_ping", "-5s", `must be a positive duration, got "-5s"`},
		{"database.startup_timeout", "0", `must be a positive duration, got "0s"`},
		{"sse.heartbeat", "abc", `must be a positive duration, got "abc"`},
		{"sse.heartbeat", "-1s", `must be a positive duration, got "-1s"`},
		{"sse.retry", "500us", `must be a duration of at least 1ms, got "500µs"`},
		{"sse.retry", "0s", "must be a duration of at least 1ms"},
		{"sse.max_connections", "-1", "must be a non-negative integer (0 means no limit)"},
		{"sse.max_connections", "99999999999999999999", "must be a non-negative integer"},
		{"sse.write_timeout", "0s", "must be a positive duration"},
		{"auth.staff_token", "short", "must be at least 8 characters"},
		{"auth.staff_token", "has a space", "must be at least 8 characters"},
		{"webhooks.allow_private_targets", "maybe", `must be true or false, got "maybe"`},
		{"webhooks.workers", "0", `must be a positive integer, got "0"`},
		{"webhooks.timeout", "0s", "must be a positive duration"},
		{"webhooks.timeout", "soon", `must be a positive duration, got "soon"`},
		{"log.level", "verbose", `must be one of debug, info, warn, error, got "verbose"`},
		{"log.format", "xml", `must be text or json, got "xml"`},
		{"demo.enabled", "sometimes", `must be true or false, got "sometimes"`},
		{"demo.interval", "0s", "must be a positive duration"},
	}

	// Every key with a rule beyond its type has a case.
	for _, k := range keys {
		if !slices.ContainsFunc(tests, func(tt struct{ key, value, want string }) bool {
			return tt.key == k.name
		}) && k.name != "database.url" {
			t.Errorf("no bad-value case for %s", k.name)
		}
	}

	for _, tt := range tests {
		name := tt.key + "=" + tt.value
		t.Run("env/"+name, func(t *testing.T) {
			isolate(t)
			setRequired(t)
			t.Setenv(envName(tt.key), tt.value)
			if tt.value == "" {
				// An empty variable counts as unset; use a flag instead.
				t.Skip("empty values are covered by the flag case")
			}

			_, err := load()
			checkBadValue(t, err, tt.key, tt.value, tt.want)
		})
		t.Run("file/"+name, func(t *testing.T) {
			isolate(t)
			setRequired(t)
			t.Setenv(envName(tt.key), "") // lets the file's value through
			section, leaf, _ := strings.Cut(tt.key, ".")
			path := writeFile(t, "bad.yaml", section+":\n  "+leaf+": '"+tt.value+"'\n")

			_, err := load("--config", path)
			checkBadValue(t, err, tt.key, tt.value, tt.want)
		})
		t.Run("flag/"+name, func(t *testing.T) {
			isolate(t)
			setRequired(t)

			// Typed flags fail in Parse, whose error names the flag.
			_, err := load("--" + tt.key + "=" + tt.value)
			if err != nil && strings.Contains(err.Error(), "invalid argument") {
				if !strings.Contains(err.Error(), "--"+tt.key) {
					t.Errorf("parse error %q does not name --%s", err, tt.key)
				}
				return
			}
			checkBadValue(t, err, tt.key, tt.value, tt.want)
		})
	}
}

// checkBadValue checks that err rejects the value of key with want, and
// never shows a secret.
func checkBadValue(t *testing.T, err error, key, value, want string) {
	t.Helper()

	if err == nil {
		t.Fatalf("Load accepted %s=%q", key, value)
	}
	prefix := "config: " + key + ": "
	if !strings.Contains(err.Error(), prefix+want) {
		t.Errorf("error = %q, want it to contain %q", err, prefix+want)
	}
	if keyByName[key].secret && strings.Contains(err.Error(), value) {
		t.Errorf("error %q shows the secret value", err)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    string // passed with --config when not empty
		env     map[string]string
		args    []string
		want    []string
		notWant []string
	}{
		{
			name: "database.url required",
			env:  map[string]string{"ORDERSTREAM_DATABASE_URL": ""},
			want: []string{
				"config: database.url: required; set it through ORDERSTREAM_DATABASE_URL",
			},
		},
		{
			name: "auth.staff_token required",
			env:  map[string]string{"ORDERSTREAM_AUTH_STAFF_TOKEN": ""},
			want: []string{
				"config: auth.staff_token: required; " +
					"set it through ORDERSTREAM_AUTH_STAFF_TOKEN",
			},
		},
		{
			name: "every bad key reported at once",
			env:  map[string]string{"ORDERSTREAM_AUTH_STAFF_TOKEN": "tiny"},
			args: []string{"--sse.retry=0s", "--log.level=loud"},
			want: []string{
				"config: sse.retry: ", "config: log.level: ", "config: auth.staff_token: ",
			},
			notWant: []string{"tiny"},
		},
		{
			name: "duration without unit in yaml",
			file: "sse:\n  heartbeat: 15\n",
			want: []string{`config: sse.heartbeat: must be a positive duration, got "15"`},
		},
		{
			name: "fraction for an integer in yaml",
			file: "sse:\n  max_connections: 2.5\n",
			want: []string{
				"config: sse.max_connections: must be a non-negative integer " +
					`(0 means no limit), got "2.5"`,
			},
		},
		{
			name: "map for a duration",
			file: "sse:\n  heartbeat:\n    seconds: 3\n",
			want: []string{"config: sse.heartbeat.seconds: unknown key in "},
		},
		{
			name: "unknown key",
			file: "sse:\n  hearbeat: 20s\nmetrics: true\n",
			want: []string{
				"config: sse.hearbeat: unknown key in ",
				"config: metrics: unknown key in ",
			},
		},
		{
			name: "scalar section",
			file: "demo: true\n",
			want: []string{"config: demo: must be a section of keys"},
		},
		{
			name: "malformed yaml",
			file: "sse: [\n",
			want: []string{"config: read "},
		},
		{
			name: "missing explicit file",
			args: []string{"--config", "does/not/exist.yaml"},
			want: []string{"config: read does/not/exist.yaml: "},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolate(t)
			setRequired(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			args := tt.args
			if tt.file != "" {
				args = append(args, "--config", writeFile(t, "orderstream.yaml", tt.file))
			}

			_, err := load(args...)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error = %q, want it to contain %q", err, w)
				}
			}
			for _, nw := range tt.notWant {
				if strings.Contains(err.Error(), nw) {
					t.Errorf("error = %q, want it not to contain %q", err, nw)
				}
			}
		})
	}
}

func TestValidate(t *testing.T) {
	c := withRequired()
	if err := c.Validate(); err != nil {
		t.Errorf("Validate(defaults with required values) = %v", err)
	}

	// The zero Config breaks every key with a rule except the ones whose
	// zero value is fine.
	var zero Config
	err := zero.Validate()
	if err == nil {
		t.Fatal("Validate(zero Config) = nil")
	}
	fine := []string{
		"http.public_url", "database.max_idle_conns", "sse.max_connections",
		"webhooks.allow_private_targets", "demo.enabled",
	}
	for _, k := range keys {
		named := strings.Contains(err.Error(), "config: "+k.name+": ")
		if named == slices.Contains(fine, k.name) {
			t.Errorf("Validate(zero Config): key %s reported = %v", k.name, named)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		level string
		want  slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
		{"WARN", slog.LevelWarn},
		{"", slog.LevelInfo},
	}
	for _, tt := range tests {
		if got := (Log{Level: tt.level}).SlogLevel(); got != tt.want {
			t.Errorf("SlogLevel(%q) = %v, want %v", tt.level, got, tt.want)
		}
	}
}

// TestKeysMatchConfig checks that the keys table, and so the flags, cover
// every field of Config and nothing else.
func TestKeysMatchConfig(t *testing.T) {
	var fields []string
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		section := ct.Field(i)
		for j := range section.Type.NumField() {
			leaf := section.Type.Field(j)
			fields = append(fields,
				section.Tag.Get("mapstructure")+"."+leaf.Tag.Get("mapstructure"))
		}
	}

	var flags []string
	Flags("orderstream").VisitAll(func(f *pflag.Flag) {
		if f.Name != configFlag && f.Name != demoFlag {
			flags = append(flags, f.Name)
		}
	})

	var names []string
	for _, k := range keys {
		names = append(names, k.name)
	}
	slices.Sort(fields)
	slices.Sort(names)
	if diff := cmp.Diff(fields, names); diff != "" {
		t.Errorf("keys table does not match Config (-fields +keys):\n%s", diff)
	}
	if diff := cmp.Diff(fields, flags); diff != "" {
		t.Errorf("flags do not match Config (-fields +flags):\n%s", diff)
	}
}

func TestShippedFile(t *testing.T) {
	path, err := filepath.Abs(shippedFile)
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read shipped file: %v", err)
	}

	t.Run("holds every flag's key", func(t *testing.T) {
		v := viper.New()
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			t.Fatalf("parse %s: %v", path, err)
		}

		Flags("orderstream").VisitAll(func(f *pflag.Flag) {
			if f.Name == configFlag || f.Name == demoFlag {
				return
			}
			k := keyByName[f.Name]
			if !strings.Contains(string(text), "Env: "+envName(k.name)+"\n") {
				t.Errorf("%s: no %q line", k.name, "Env: "+envName(k.name))
			}
			if !k.required {
				if !v.InConfig(k.name) {
					t.Errorf("%s: missing", k.name)
				}
				return
			}

			// Keys without a default are there, commented out.
			if v.InConfig(k.name) {
				t.Errorf("%s: set, want it commented out", k.name)
			}
			if !commentedOut(string(text), k.name) {
				t.Errorf("%s: no commented-out example in its section", k.name)
			}
		})
	})

	t.Run("loads as-is and documents the defaults", func(t *testing.T) {
		isolate(t)
		setRequired(t)

		got, err := load("--config", path)
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		if diff := cmp.Diff(withRequired(), *got); diff != "" {
			t.Errorf("shipped values differ from the defaults (-defaults +file):\n%s", diff)
		}
	})

	t.Run("needs only the required keys", func(t *testing.T) {
		isolate(t)

		_, err := load("--config", path)
		if err == nil {
			t.Fatal("Load succeeded without database.url and auth.staff_token")
		}
		lines := strings.Split(err.Error(), "\n")
		if len(lines) != 2 ||
			!strings.HasPrefix(lines[0], "config: database.url: required") ||
			!strings.HasPrefix(lines[1], "config: auth.staff_token: required") {
			t.Errorf("error = %q, want only the two required keys", err)
		}
	})
}

// commentedOut reports whether text has a line "# leaf: …" inside the
// section of key.
func commentedOut(text, key string) bool {
	section, leaf, _ := strings.Cut(key, ".")
	start := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(section) + `:\s*$`).FindStringIndex(text)
	if start == nil {
		return false
	}
	body := text[start[1]:]
	if next := regexp.MustCompile(`(?m)^\S`).FindStringIndex(body); next != nil {
		body = body[:next[0]]
	}
	return regexp.MustCompile(`(?m)^\s+#\s*` + regexp.QuoteMeta(leaf) + `:\s*\S`).MatchString(body)
}
