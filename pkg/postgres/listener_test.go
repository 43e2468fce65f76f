package postgres

import "testing"

func TestWithApplicationName(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://u@h:5432/db?sslmode=disable",
			"postgres://u@h:5432/db?application_name=x&sslmode=disable"},
		{"postgresql://h/db", "postgresql://h/db?application_name=x"},
		{"host=h dbname=db", "host=h dbname=db application_name=x"},
	}
	for _, tt := range tests {
		if got := withApplicationName(tt.dsn, "x"); got != tt.want {
			t.Errorf("withApplicationName(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		payload string
		id      string
		version int64
		ok      bool
	}{
		{"7c1e:3", "7c1e", 3, true},
		{"7c1e", "", 0, false},
		{"7c1e:x", "", 0, false},
	}
	for _, tt := range tests {
		id, v, err := parsePayload(tt.payload)
		if (err == nil) != tt.ok || id != tt.id || v != tt.version {
			t.Errorf("parsePayload(%q) = %q, %d, %v", tt.payload, id, v, err)
		}
	}
}
