package runenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestProgram(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name string, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("app", 0o755)
	write("data", 0o644)
	t.Setenv("PATH", bin)
	for _, tc := range []struct{ prog, want, err string }{
		{"./bin/app", filepath.Join(bin, "app"), ""},
		{"bin/app", filepath.Join(bin, "app"), ""},
		{filepath.Join(bin, "app"), filepath.Join(bin, "app"), ""},
		{"app", filepath.Join(bin, "app"), ""},
		{"./bin/missing", "", "does not exist (looked at " + filepath.Join(bin, "missing")},
		{"missing", "", `"missing" not found in PATH (` + bin + ")"},
		{"./bin", "", "is a directory"},
		{"./bin/data", "", "is not executable (mode -rw-r--r--): chmod +x " + filepath.Join(bin, "data")},
		{"data", "", "not found in PATH"},
	} {
		got, err := Program(tc.prog, dir)
		if tc.err == "" {
			if err != nil || got != tc.want {
				t.Errorf("Program(%q) = %q, %v; want %q", tc.prog, got, err, tc.want)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("Program(%q) = %q, %v; want an error containing %q", tc.prog, got, err, tc.err)
		}
	}
	if got := ProgramPath("app", dir); got != "app" {
		t.Errorf("ProgramPath of a bare name = %q", got)
	}
	if got := ProgramPath("./x", "/srv"); got != "/srv/x" {
		t.Errorf("ProgramPath(./x) = %q", got)
	}
}

func TestCheckTemplates(t *testing.T) {
	for s, ok := range map[string]bool{
		"--port={{PORT}}": true, "{{ RELEASE_ID }}": true, "plain": true, "{{PROT}}": false, "{{ PORT-1 }}": false, "a {{}} b": false,
	} {
		if err := CheckTemplates(s); (err == nil) != ok {
			t.Errorf("CheckTemplates(%q) = %v", s, err)
		}
	}
	if err := CheckTemplates("{{PROT}}"); err == nil || !strings.Contains(err.Error(), "{{PORT}}") {
		t.Errorf("error does not name the known values: %v", err)
	}
	vals := Process{Port: "8080", Release: "r1"}.Values()
	for _, k := range Keys {
		if _, ok := vals[k]; !ok {
			t.Errorf("Process.Values has no %s", k)
		}
	}
	if len(vals) != len(Keys) {
		t.Errorf("Values has %d keys, Keys %d", len(vals), len(Keys))
	}
}
