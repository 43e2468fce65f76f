package sql

import (
	"io/fs"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestFiles checks the naming rules of migrations: NNNN_name.sql, numbered 1, 2, 3, …
// without gaps, each with a goose Up section.
func TestFiles(t *testing.T) {
	names, err := fs.Glob(FS, "*")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no migrations embedded")
	}

	pattern := regexp.MustCompile(`^(\d{4})_[a-z0-9_]+\.sql$`)
	for i, name := range names {
		m := pattern.FindStringSubmatch(name)
		if m == nil {
			t.Errorf("%s: name does not match %s", name, pattern)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n != i+1 {
			t.Errorf("%s: number %d, want %04d", name, n, i+1)
		}

		b, err := fs.ReadFile(FS, name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "-- +goose Up\n") {
			t.Errorf("%s: no %q line", name, "-- +goose Up")
		}
	}
}
