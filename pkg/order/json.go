package order

import (
	"encoding/json"
	"time"
)

// TimeFormat is how times appear on the wire: UTC with milliseconds, as in
// 2026-12-03T15:04:05.123Z.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// FormatTime renders t in TimeFormat.
func FormatTime(t time.Time) string {
	return t.UTC().Format(TimeFormat)
}

// MarshalJSON renders the event as on the SSE stream, with its time in TimeFormat.
func (e Event) MarshalJSON() ([]byte, error) {
	type wire Event
	return json.Marshal(struct {
		wire
		At string `json:"at"`
	}{wire(e), FormatTime(e.At)})
}
