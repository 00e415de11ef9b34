// Package fsutil holds Runway's file-system rules, once: every state or
// record file is replaced atomically and durably (WriteFileAtomic), and the
// data directories of the server and the agent are private (Private), whatever
// modes they had before. It imports nothing of Runway's.
package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// Modes of everything under a data directory.
const (
	DirMode  os.FileMode = 0o700
	FileMode os.FileMode = 0o600
)

// WriteFileAtomic replaces path with b: a temporary file in the same
// directory, fsync, rename, fsync of the directory. A crash leaves either
// the old or the new content, never a mix or an empty file, and the rename
// itself survives a power cut.
func WriteFileAtomic(path string, b []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	ok = true
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir fsyncs a directory, making renames and removals in it durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		// EINVAL, ENOTSUP: a file system that cannot sync directories
		// (some network and FUSE ones); the rename is as durable as it gets.
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// Private creates dir if needed and forces it and everything below it to
// DirMode (directories) and FileMode (files, pipes, sockets), whatever
// existed: a data dir made earlier with mode 0755, or files created 0644,
// must not stay readable by other users. Symbolic links are not followed.
func Private(dir string) error {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // removed meanwhile
			}
			return err
		}
		want := FileMode
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			return nil
		case d.IsDir():
			want = DirMode
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if info.Mode().Perm() == want {
			return nil
		}
		if err := os.Chmod(p, want); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("make %s private (mode %o): %w", p, want, err)
		}
		return nil
	})
}
