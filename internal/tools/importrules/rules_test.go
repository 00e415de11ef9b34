package importrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

// TestImportRules checks Runway's real package graph.
func TestImportRules(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go not on PATH: the import rules need `go list`")
	}
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Deps", Module+"...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	g := Graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Deps       []string
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list: %v", err)
		}
		path, ok := strings.CutPrefix(p.ImportPath, Module)
		if !ok {
			continue
		}
		g[path] = []string{}
		for _, d := range p.Deps {
			if d, ok := strings.CutPrefix(d, Module); ok {
				g[path] = append(g[path], d)
			}
		}
	}
	for _, p := range append(append([]string{}, Leaves...), "internal/server", "internal/client", "internal/driver/local") {
		if _, ok := g[p]; !ok {
			t.Errorf("package %s not in the graph: update the rules in rules.go", p)
		}
	}
	for _, msg := range Check(g) {
		t.Error(msg)
	}
}

// TestCheckCatches: the check reports a leaf that imports above itself and
// a forbidden dependency, and nothing for a graph that keeps the rules.
func TestCheckCatches(t *testing.T) {
	ok := Graph{"internal/server": {"internal/agentapi", "internal/store"}, "internal/config": {"internal/naming"}}
	if msgs := Check(ok); len(msgs) != 0 {
		t.Errorf("a graph that keeps the rules: %q", msgs)
	}
	bad := Graph{
		"internal/server":   {"internal/agentapi", "internal/supervisor"},
		"internal/client":   {"internal/api"},
		"internal/strategy": {"internal/config", "internal/engine"},
	}
	msgs := Check(bad)
	want := []string{"internal/client depends on internal/api", "internal/server depends on internal/supervisor", "internal/strategy is a leaf but depends on internal/engine"}
	if len(msgs) != len(want) {
		t.Fatalf("got %q, want %d messages", msgs, len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(msgs[i], w) {
			t.Errorf("message %d: %q, want it to start with %q", i, msgs[i], w)
		}
	}
}
