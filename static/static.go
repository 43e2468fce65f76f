// Package static holds the web pages of orderstream, embedded in the binary so that
// the service runs from one file and its pages work offline.
//
// The tree has three parts: assets/ (style sheet, scripts, images) served as they are
// under /static/, pages/ (the customer's HTML pages, served as they are at their own
// paths) and templates/ (html/template files rendered by the server, such as the
// staff board).
package static

import "embed"

// FS holds assets/, pages/ and templates/.
//
//go:embed assets pages templates
var FS embed.FS
