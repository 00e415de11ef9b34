package fsutil

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// A data dir made earlier with mode 0755 and files created 0644 (what a
// umask of 022 gives) are all made private; symbolic links are left alone.
func TestPrivateForcesModesOfWhatExisted(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	dir := filepath.Join(t.TempDir(), "data")
	for _, d := range []string{dir, filepath.Join(dir, "logs"), filepath.Join(dir, "logs", "web-r1")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := []string{filepath.Join(dir, "runway.db"), filepath.Join(dir, "logs", "web-r1", "a1b2c3d4.log")}
	for _, f := range files {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o666); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "outside")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}

	if err := Private(dir); err != nil {
		t.Fatal(err)
	}
	want := map[string]os.FileMode{dir: 0o700, filepath.Join(dir, "logs"): 0o700,
		filepath.Join(dir, "logs", "web-r1"): 0o700, files[0]: 0o600, files[1]: 0o600, fifo: 0o600, outside: 0o644}
	for p, m := range want {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != m {
			t.Errorf("%s: mode %o, want %o", p, st.Mode().Perm(), m)
		}
	}
}

func TestPrivateCreatesTheDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	if err := Private(dir); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != DirMode {
		t.Fatalf("stat %s: %v %v", dir, st, err)
	}
}

// The file is replaced whole, with the mode asked whatever the umask or the
// old file's mode, and no temporary file is left behind.
func TestWriteFileAtomic(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := os.WriteFile(p, []byte("old content, longer than the new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(p, []byte("new"), FileMode); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("content %q %v", b, err)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != FileMode {
		t.Errorf("mode %o, want %o", st.Mode().Perm(), FileMode)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("files left in %s: %v", dir, ents)
	}
	err = WriteFileAtomic(filepath.Join(dir, "missing", "x"), []byte("x"), FileMode)
	if err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}
