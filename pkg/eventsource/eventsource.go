// Package eventsource reads Server-Sent Events streams, parsing the wire format by the
// WHATWG HTML rules: LF, CRLF and CR line ends, multi-line data, comments, the id and
// retry fields. orderstream's tests and tools use it to follow streams as a browser's
// EventSource would.
package eventsource

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
)

// Kind says what a parsed item is.
type Kind int

// The kinds of item a Reader returns.
const (
	// Message is a dispatched event.
	Message Kind = iota
	// Comment is a line starting with a colon, such as a heartbeat.
	Comment
	// Retry is a valid retry field: the server's reconnection delay.
	Retry
)

// Event is one item read from a stream.
type Event struct {
	Kind Kind
	// Type is the event name, "message" when the stream names none.
	Type string
	// Data is the event's data, its lines joined with LF.
	Data string
	// ID is the last event ID when the event was dispatched, as EventSource keeps it.
	ID string
	// HasID reports whether this event itself carried an id field.
	HasID bool
	// Comment is the text of a comment, without the colon and one leading space.
	Comment string
	// Retry is the reconnection delay of a Retry item.
	Retry time.Duration
}

// Reader parses a stream.
type Reader struct {
	sc     *bufio.Scanner
	first  bool
	lastID string

	typ     string
	data    strings.Builder
	hasData bool
	hasID   bool
}

// maxLine bounds one line of the stream.
const maxLine = 1 << 20

// NewReader returns a Reader of the stream r.
func NewReader(r io.Reader) *Reader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxLine)
	sc.Split(splitLines)
	return &Reader{sc: sc, first: true}
}

// LastEventID returns the last event ID seen so far, as EventSource would send it on
// reconnection.
func (r *Reader) LastEventID() string {
	return r.lastID
}

// Next returns the next event, comment or retry item. At the end of the stream it
// returns io.EOF; an event not yet terminated by a blank line is discarded, as the
// standard says.
func (r *Reader) Next() (Event, error) {
	for r.sc.Scan() {
		line := r.sc.Text()
		if r.first {
			line = strings.TrimPrefix(line, "\uFEFF")
			r.first = false
		}
		if ev, ok := r.line(line); ok {
			return ev, nil
		}
	}
	if err := r.sc.Err(); err != nil {
		return Event{}, err
	}
	return Event{}, io.EOF
}

// line interprets one line; it reports an item to return, if any.
func (r *Reader) line(line string) (Event, bool) {
	if line == "" {
		return r.dispatch()
	}
	if strings.HasPrefix(line, ":") {
		return Event{Kind: Comment, Comment: strings.TrimPrefix(line[1:], " ")}, true
	}

	field, value, _ := strings.Cut(line, ":")
	value = strings.TrimPrefix(value, " ")
	switch field {
	case "event":
		r.typ = value
	case "data":
		r.data.WriteString(value)
		r.data.WriteByte('\n')
		r.hasData = true
	case "id":
		if !strings.ContainsRune(value, 0) {
			r.lastID = value
			r.hasID = true
		}
	case "retry":
		if ms, err := strconv.ParseUint(value, 10, 63); err == nil && isDigits(value) {
			return Event{Kind: Retry, Retry: time.Duration(ms) * time.Millisecond}, true
		}
	}
	return Event{}, false
}

func (r *Reader) dispatch() (Event, bool) {
	defer func() {
		r.typ = ""
		r.data.Reset()
		r.hasData = false
		r.hasID = false
	}()
	if !r.hasData {
		return Event{}, false
	}
	typ := r.typ
	if typ == "" {
		typ = "message"
	}
	data := strings.TrimSuffix(r.data.String(), "\n")
	return Event{Kind: Message, Type: typ, Data: data, ID: r.lastID, HasID: r.hasID}, true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// splitLines splits at CRLF, LF or CR. A CR at the end of the buffer waits for more
// input, since an LF may follow it.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	i := bytes.IndexAny(data, "\r\n")
	switch {
	case i < 0:
		if atEOF && len(data) > 0 {
			// A last line without an end is not a complete line; drop it.
			return len(data), nil, nil
		}
		return 0, nil, nil
	case data[i] == '\n':
		return i + 1, data[:i], nil
	case i+1 < len(data):
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	case atEOF:
		return i + 1, data[:i], nil
	}
	return 0, nil, nil
}
