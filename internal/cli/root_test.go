package cli

import (
	"bytes"
	"io"
	"strings"
	"testing"
)

// TestCommandsListedOnce guards the explicit list in root.go: cobra accepts
// two commands of one name and runs the first, so a command listed twice or
// two files claiming a name would go unnoticed.
func TestCommandsListedOnce(t *testing.T) {
	root := NewRoot(&Globals{Output: "table", Stdout: io.Discard, Stderr: io.Discard})
	seen := map[string]bool{}
	for _, c := range root.Commands() {
		if seen[c.Name()] {
			t.Errorf("command %q is listed twice", c.Name())
		}
		seen[c.Name()] = true
	}
	if got, want := len(root.Commands()), len(commands()); got != want {
		t.Errorf("root has %d commands, commands() lists %d", got, want)
	}
}

// TestRender checks that a view prints the data itself as JSON and the
// table only without --output json.
func TestRender(t *testing.T) {
	table := func(w io.Writer, v []string) error {
		_, err := io.WriteString(w, "TABLE "+strings.Join(v, ",")+"\n")
		return err
	}
	for _, tc := range []struct{ output, want string }{
		{"table", "TABLE a,b\n"},
		{"json", "[\n  \"a\",\n  \"b\"\n]\n"},
	} {
		var out bytes.Buffer
		g := &Globals{Output: tc.output, Stdout: &out}
		if err := render(g, []string{"a", "b"}, table); err != nil {
			t.Fatal(err)
		}
		if out.String() != tc.want {
			t.Errorf("--output %s: got %q, want %q", tc.output, out.String(), tc.want)
		}
	}
}
