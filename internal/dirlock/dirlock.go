// Package dirlock gives one process exclusive use of a data directory: an
// flock(2) on a lock file inside it. The kernel releases the lock when the
// process ends, however it ends (kill -9 included), so a crash never leaves
// a stale lock behind, and a second process on the same directory learns at
// once which pid holds it.
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FileName is the lock file inside a locked directory. Its content, "PID
// WHAT", names the holder; the lock itself is the flock, not the content.
const FileName = "runway.lock"

// Lock is a held lock; Release gives it back.
type Lock struct{ f *os.File }

// HeldError is returned by Acquire when another process holds the lock.
type HeldError struct {
	Dir string
	// PID and What name the holder as it recorded itself (0 and "" when it
	// has locked the file but not yet written its name).
	PID  int
	What string
}

func (e *HeldError) Error() string {
	holder := "another process"
	if e.What != "" {
		holder = "another " + e.What
	}
	pid := "pid unknown: it is starting"
	if e.PID > 0 {
		pid = "pid " + strconv.Itoa(e.PID)
	}
	return fmt.Sprintf("data dir %s is in use by %s (%s); stop it first, or choose another --data-dir", e.Dir, holder, pid)
}

// Acquire takes the lock of dir (which must exist) for this process,
// recording what (such as "runway agent") and the pid, or returns a
// *HeldError at once when another process holds it.
func Acquire(dir, what string) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	// O_CLOEXEC (Go's default): processes this one starts do not inherit
	// the lock, so an instance that outlives its agent never holds it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w (choose a writable --data-dir)", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			he := &HeldError{Dir: dir}
			if b, rerr := os.ReadFile(path); rerr == nil {
				pid, rest, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
				he.PID, _ = strconv.Atoi(pid)
				he.What = rest
			}
			return nil, he
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+" "+what+"\n"), 0)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("write lock file %s: %w", path, err)
		}
	}
	return &Lock{f: f}, nil
}

// Release gives the lock back. The file stays: removing it would let a
// process that opened it before the removal and one that creates a new one
// both hold "the" lock.
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}
