package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestServerSubcommandUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"server", "backup"},
		{"server", "backup", "a.db", "b.db"},
		{"server", "resync", "hello"},
		{"server", "resync", "--env", "dev"},
		{"server", "resync", "a", "b", "--env", "dev"},
	} {
		var out, errb bytes.Buffer
		if code := Main(args, strings.NewReader(""), &out, &errb); code != ExitUsage {
			t.Errorf("runway %v: exit %d, want %d (%s)", args, code, ExitUsage, errb.String())
		}
	}
}

// TestServerBackupFailures: a missing database is named (and not created),
// an existing backup file is never overwritten.
func TestServerBackupFailures(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := Main([]string{"server", "backup", "--data-dir", dir, filepath.Join(dir, "b.db")}, strings.NewReader(""), &out, &errb)
	if code != ExitFailure || !strings.Contains(errb.String(), "no database at "+filepath.Join(dir, "runway.db")) {
		t.Errorf("backup without a database: exit %d: %s", code, errb.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "runway.db")); err == nil {
		t.Error("backup created the database it was to copy")
	}
	os.WriteFile(filepath.Join(dir, "taken.db"), []byte("mine"), 0o600)
	errb.Reset()
	code = Main([]string{"server", "backup", "--data-dir", dir, filepath.Join(dir, "taken.db")}, strings.NewReader(""), &out, &errb)
	if b, _ := os.ReadFile(filepath.Join(dir, "taken.db")); code != ExitFailure || string(b) != "mine" || !strings.Contains(errb.String(), "already exists") {
		t.Errorf("backup over an existing file: exit %d, file %q: %s", code, b, errb.String())
	}
}
