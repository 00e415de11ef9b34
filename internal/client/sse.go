package client

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxSSELine bounds one line of a stream (a log line is at most 1 MiB at
// the agent, and JSON escaping may grow it).
const maxSSELine = 4 << 20

// SSEEvent is one server-sent event: its type (event:), id and data (the
// data: lines joined by newlines).
type SSEEvent struct {
	Event string
	ID    string
	Data  []byte
}

// readSSE decodes a text/event-stream (the WHATWG rules: fields event, id,
// data; comments and retry ignored; an empty line dispatches) and calls fn
// for each event until the stream ends or fn fails.
func readSSE(r io.Reader, fn func(SSEEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxSSELine)
	var ev SSEEvent
	var data bytes.Buffer
	hasData := false
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if hasData {
				ev.Data = bytes.Clone(data.Bytes())
				if ev.Event == "" {
					ev.Event = "message"
				}
				if err := fn(ev); err != nil {
					return err
				}
			}
			ev, hasData = SSEEvent{ID: ev.ID}, false
			data.Reset()
			continue
		}
		if line[0] == ':' {
			continue // a comment (keep-alive)
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "event":
			ev.Event = string(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 {
				ev.ID = string(value)
			}
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.Write(value)
			hasData = true
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("read event stream: a line longer than %d bytes", maxSSELine)
		}
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}
