package cli

import (
	"bytes"
	"context"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var restartLine = regexp.MustCompile(`msg="child exited unexpectedly; restarting it".* status="exit status 3" .*restart_in=(\S+)`)

// superviseUntil supervises sh -c script until n restarts were logged and
// returns their delays.
func superviseUntil(t *testing.T, script string, resetAfter time.Duration, n int) []string {
	t.Helper()
	var logs lockedBuffer
	s := &supervised{name: "test", bin: "/bin/sh", args: []string{"-c", script}, healthURL: "http://127.0.0.1:1/",
		out: &logs, log: slog.New(slog.NewTextHandler(&logs, nil)), resetAfter: resetAfter}
	s.cur = s.spawn()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.supervise(ctx); close(done) }()
	defer func() {
		cancel()
		<-done
		s.stop(9, time.Second)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m := restartLine.FindAllStringSubmatch(logs.String(), -1)
		if len(m) >= n {
			var out []string
			for _, x := range m[:n] {
				out = append(out, x[1])
			}
			return out
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d restarts not logged within 30s:\n%s", n, logs.String())
		}
		<-time.After(20 * time.Millisecond)
	}
}

// A child that keeps exiting is restarted after 0.5 s, 1 s, 2 s, ...; each
// restart is logged with its exit status.
func TestSuperviseBackoffDoubles(t *testing.T) {
	t.Parallel()
	got := superviseUntil(t, "exit 3", time.Hour, 3)
	if want := "500ms 1s 2s"; strings.Join(got, " ") != want {
		t.Errorf("restart delays %v, want %s", got, want)
	}
}

// A child that stayed up longer than the reset time is restarted after the
// initial delay again.
func TestSuperviseBackoffResets(t *testing.T) {
	t.Parallel()
	got := superviseUntil(t, "sleep 0.4; exit 3", 300*time.Millisecond, 3)
	if want := "500ms 500ms 500ms"; strings.Join(got, " ") != want {
		t.Errorf("restart delays %v, want %s", got, want)
	}
}
