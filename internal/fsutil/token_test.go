package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "token")
	if err := WriteToken(p, "rwt_abc"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != FileMode {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if tok, err := ReadToken(p); err != nil || tok != "rwt_abc" {
		t.Fatalf("ReadToken = %q, %v", tok, err)
	}
	for content, want := range map[string]string{"\n  \n": "is empty", "a\nb\n": "more than one line", "secret other": "more than one"} {
		os.WriteFile(p, []byte(content), 0o600)
		_, err := ReadToken(p)
		if err == nil || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), "secret") {
			t.Errorf("ReadToken(%q) = %v, want %q and no token in it", content, err, want)
		}
	}
	if _, err := ReadToken(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}
