package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
		ok     bool
	}{
		{"20000-29999", 20000, 29999, true},
		{"1-1", 1, 1, true},
		{"9-1", 0, 0, false},
		{"0-10", 0, 0, false},
		{"1-65536", 0, 0, false},
		{"20000", 0, 0, false},
		{"a-b", 0, 0, false},
	} {
		lo, hi, err := parsePortRange(c.in)
		if (err == nil) != c.ok || lo != c.lo || hi != c.hi {
			t.Errorf("parsePortRange(%q) = %d, %d, %v", c.in, lo, hi, err)
		}
	}
}

func TestAgentUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"agent", "--port-range", "5-1"},
		{"agent", "extra"},
		{"agent", "status", "extra"},
		{"agent", "--log-level", "loud"},
	} {
		var out, errb bytes.Buffer
		if code := Main(args, strings.NewReader(""), &out, &errb); code != ExitUsage {
			t.Errorf("runway %v: exit %d, want %d (%s)", args, code, ExitUsage, errb.String())
		}
	}
}

func TestAgentStatusNeedsToken(t *testing.T) {
	var out, errb bytes.Buffer
	code := Main([]string{"agent", "status", "--data-dir", t.TempDir()}, strings.NewReader(""), &out, &errb)
	if code != ExitFailure || !strings.Contains(errb.String(), "agent.token") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
}
