package client

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestReadSSE(t *testing.T) {
	in := ": keep-alive\n\nid: 01A\nevent: event\ndata: {\"a\":1}\n\nevent: log\ndata: one\ndata: two\n\ndata:x\n\nevent: partial\ndata: never dispatched"
	var got []SSEEvent
	err := readSSE(strings.NewReader(in), func(e SSEEvent) error { got = append(got, e); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []SSEEvent{
		{Event: "event", ID: "01A", Data: []byte(`{"a":1}`)},
		{Event: "log", ID: "01A", Data: []byte("one\ntwo")},
		{Event: "message", ID: "01A", Data: []byte("x")},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	stop := errors.New("stop")
	if err := readSSE(strings.NewReader("data: a\n\ndata: b\n\n"), func(SSEEvent) error { return stop }); err != stop {
		t.Errorf("fn's error: got %v", err)
	}
	long := "data: " + strings.Repeat("x", maxSSELine+1) + "\n\n"
	if err := readSSE(strings.NewReader(long), func(SSEEvent) error { return nil }); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Errorf("an overlong line: %v", err)
	}
}

// FuzzReadSSE: the decoder of the server's streams never panics, and what
// it dispatches is data the stream carried.
func FuzzReadSSE(f *testing.F) {
	for _, s := range []string{"data: x\n\n", "id: 1\nevent: log\ndata: {}\n\n", ": c\n\n", "data\n\n", "event:\r\ndata:\x00\n\n", "retry: 5\n\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = readSSE(bytes.NewReader(b), func(e SSEEvent) error {
			if len(e.Data) > len(b) {
				t.Fatalf("data longer than the input: %q", e.Data)
			}
			return nil
		})
	})
}
