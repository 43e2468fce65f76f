package eventsource

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"
)

func readAll(t *testing.T, r io.Reader) []Event {
	t.Helper()
	var got []Event
	er := NewReader(r)
	for {
		ev, err := er.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		got = append(got, ev)
	}
}

func TestReader(t *testing.T) {
	msg := func(typ, data, id string, hasID bool) Event {
		return Event{Kind: Message, Type: typ, Data: data, ID: id, HasID: hasID}
	}
	tests := []struct {
		name   string
		stream string
		want   []Event
	}{
		{"LF", "id: 1\nevent: status\ndata: {}\n\n",
			[]Event{msg("status", "{}", "1", true)}},
		{"CRLF", "id: 1\r\nevent: status\r\ndata: {}\r\n\r\n",
			[]Event{msg("status", "{}", "1", true)}},
		{"CR", "id: 1\revent: status\rdata: {}\r\r",
			[]Event{msg("status", "{}", "1", true)}},
		{"mixed ends", "data: a\r\ndata: b\rdata: c\n\n",
			[]Event{msg("message", "a\nb\nc", "", false)}},
		{"multi-line data", "data: one\ndata:two\ndata:  three\n\n",
			[]Event{msg("message", "one\ntwo\n three", "", false)}},
		{"comments", ": ping\n:\n\n", []Event{
			{Kind: Comment, Comment: "ping"}, {Kind: Comment, Comment: ""}}},
		{"retry", "retry: 3000\n\nretry: 3x\n\n",
			[]Event{{Kind: Retry, Retry: 3 * time.Second}}},
		{"id persists", "id: 7\ndata: a\n\ndata: b\n\n", []Event{
			msg("message", "a", "7", true), msg("message", "b", "7", false)}},
		{"empty id resets", "id: 7\ndata: a\n\nid\ndata: b\n\n", []Event{
			msg("message", "a", "7", true), msg("message", "b", "", true)}},
		{"no data, no event", "event: status\nid: 3\n\ndata: x\n\n",
			[]Event{msg("message", "x", "3", false)}},
		{"field without colon", "data\n\n", []Event{msg("message", "", "", false)}},
		{"unknown field ignored", "foo: bar\ndata: x\n\n", []Event{msg("message", "x", "", false)}},
		{"BOM", "\uFEFFdata: x\n\n", []Event{msg("message", "x", "", false)}},
		{"unterminated event dropped", "data: x\n\ndata: y\n", []Event{msg("message", "x", "", false)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := readAll(t, strings.NewReader(tt.stream))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got)\n%s", diff)
			}
			// The same stream fed a byte at a time, so that a CR and its LF arrive apart.
			got = readAll(t, iotest.OneByteReader(strings.NewReader(tt.stream)))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("one byte at a time (-want +got)\n%s", diff)
			}
		})
	}
}
