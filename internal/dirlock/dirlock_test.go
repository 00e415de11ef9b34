package dirlock

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// flock locks belong to open file descriptions, so two Acquire calls of one
// process conflict exactly as two processes do.
func TestSecondAcquireNamesTheHolder(t *testing.T) {
	dir := t.TempDir()
	l, err := Acquire(dir, "runway agent")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "runway agent")
	var he *HeldError
	if !errors.As(err, &he) {
		t.Fatalf("second Acquire: %v, want a *HeldError", err)
	}
	if he.PID != os.Getpid() || he.What != "runway agent" {
		t.Errorf("holder %d %q, want %d \"runway agent\"", he.PID, he.What, os.Getpid())
	}
	for _, want := range []string{dir, "another runway agent", "pid ", "--data-dir"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "runway server")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	b, _ := os.ReadFile(dir + "/" + FileName)
	if got := strings.TrimSpace(string(b)); !strings.HasSuffix(got, " runway server") {
		t.Errorf("lock file holds %q, want \"PID runway server\"", got)
	}
	l2.Release()
}

func TestAcquireMissingDir(t *testing.T) {
	_, err := Acquire(t.TempDir()+"/nope", "runway server")
	if err == nil || !strings.Contains(err.Error(), "--data-dir") {
		t.Fatalf("Acquire on a missing dir: %v, want an error naming --data-dir", err)
	}
}
