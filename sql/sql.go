// Package sql holds the database migrations of orderstream, numbered and applied in
// order by pkg/postgres. Files are forward-only: a merged migration is never edited;
// a change to the schema is a new file.
package sql

import "embed"

// FS holds every migration file (*.sql) of this directory.
//
//go:embed *.sql
var FS embed.FS
