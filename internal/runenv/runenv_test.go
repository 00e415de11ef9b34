package runenv

import (
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	vals := Process{Release: "01ABC", Port: "20001", Version: "1.2.3"}.Values()
	tests := []struct{ in, want string }{
		{"--port {{PORT}}", "--port 20001"},
		{"{{ RELEASE_ID }}/{{VERSION}}", "01ABC/1.2.3"},
		{"{{  PORT}}", "20001"},
		{"{{UNKNOWN}} stays", "{{UNKNOWN}} stays"},
		{"no templates", "no templates"},
	}
	for _, tt := range tests {
		if got := Expand(tt.in, vals); got != tt.want {
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEnvironKeepsOnlyAllowList(t *testing.T) {
	t.Setenv("RUNWAY_TEST_SERVER_SECRET", "do-not-pass")
	t.Setenv("PATH", "/usr/bin")
	env := Environ(Process{Service: "web", Release: "r1", Instance: "task"}, map[string]string{"GREETING": "hi {{RELEASE_ID}}"}, map[string]string{"DB": "pw {{PORT}}"}, "RUNWAY_TASK=pre_deploy")
	for _, kv := range env {
		if strings.Contains(kv, "do-not-pass") {
			t.Fatalf("the starter's variable leaked: %q", kv)
		}
	}
	// A secret is passed as it is: "{{PORT}}" in a password stays.
	for _, want := range []string{"PATH=/usr/bin", "GREETING=hi r1", "DB=pw {{PORT}}", "RUNWAY_SERVICE=web", "RUNWAY_TASK=pre_deploy"} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %q: %q", want, env)
		}
	}
	if slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "PORT=") }) {
		t.Errorf("a process without a port got PORT: %q", env)
	}
}
