// Package activation hands listening sockets from one process to another
// with systemd's socket activation convention: the sockets are the file
// descriptors from 3 on, LISTEN_FDS says how many, LISTEN_FDNAMES names
// them (colon separated) and LISTEN_PID says which process they are for.
//
// `runway up` holds the proxy's sockets and passes them to every agent it
// starts (Pass), and systemd does the same for an agent run from a .socket
// unit; the agent takes them over with Listeners. The sockets stay open in
// the holder while an agent restarts, so connections wait in the kernel's
// backlog instead of being refused.
//
// One difference from systemd: a Go parent cannot know its child's pid
// before the child runs, so Pass sets RUNWAY_LISTEN_PPID to its own pid
// instead of LISTEN_PID, and Listeners accepts either LISTEN_PID equal to
// its pid or RUNWAY_LISTEN_PPID equal to its parent's. Both guard against
// the same thing: a grandchild that inherited the variables taking
// descriptors that are not its own.
package activation

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// The variables of the convention.
const (
	EnvFDs     = "LISTEN_FDS"
	EnvNames   = "LISTEN_FDNAMES"
	EnvPID     = "LISTEN_PID"
	EnvParent  = "RUNWAY_LISTEN_PPID"
	firstFD    = 3
	maxSockets = 64
)

// Listener is a listening socket with the name it was passed under ("" when
// the sender gave no names).
type Listener struct {
	Name string
	net.Listener
}

// Listeners returns the sockets passed to this process, in descriptor order,
// or none when nothing was passed (or it was passed to another process). It
// unsets the variables, so the processes this one starts do not see them,
// and marks the descriptors close-on-exec.
func Listeners() ([]Listener, error) {
	n := os.Getenv(EnvFDs)
	pid, parent, names := os.Getenv(EnvPID), os.Getenv(EnvParent), os.Getenv(EnvNames)
	for _, k := range []string{EnvFDs, EnvNames, EnvPID, EnvParent} {
		os.Unsetenv(k)
	}
	if n == "" {
		return nil, nil
	}
	switch {
	case pid != "":
		if pid != strconv.Itoa(os.Getpid()) {
			return nil, nil
		}
	case parent != "":
		if parent != strconv.Itoa(os.Getppid()) {
			return nil, nil
		}
	default:
		return nil, fmt.Errorf("%s=%s is set without %s: the sockets cannot be told apart from inherited ones (set %s to the process id, as systemd does)", EnvFDs, n, EnvPID, EnvPID)
	}
	count, err := strconv.Atoi(n)
	if err != nil || count < 1 || count > maxSockets {
		return nil, fmt.Errorf("%s=%q: want a number of sockets from 1 to %d", EnvFDs, n, maxSockets)
	}
	var nameList []string
	if names != "" {
		nameList = strings.Split(names, ":")
		if len(nameList) != count {
			return nil, fmt.Errorf("%s=%q names %d sockets, but %s=%d", EnvNames, names, len(nameList), EnvFDs, count)
		}
	}
	var out []Listener
	fail := func(err error) ([]Listener, error) {
		for _, l := range out {
			l.Close()
		}
		return nil, err
	}
	for i := range count {
		fd := firstFD + i
		name := ""
		if nameList != nil {
			name = nameList[i]
		}
		f := os.NewFile(uintptr(fd), name)
		if f == nil {
			return fail(fmt.Errorf("socket %d of %s (fd %d) is not open", i+1, EnvFDs, fd))
		}
		// FileListener duplicates the descriptor (close-on-exec) and makes it
		// non-blocking; the inherited one is closed.
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return fail(fmt.Errorf("fd %d (%q) passed in %s is not a listening socket: %w", fd, name, EnvFDs, err))
		}
		out = append(out, Listener{Name: name, Listener: ln})
	}
	return out, nil
}

// Files are sockets ready to be passed to child processes: their
// descriptors, kept open (and listening) for as long as Files is.
type Files struct {
	names []string
	files []*os.File
}

// NewFiles takes the descriptors of listeners (TCP or Unix) to pass to
// children. The listeners themselves may be closed afterwards: the sockets
// stay open until Close.
func NewFiles(ls []Listener) (*Files, error) {
	fs := &Files{}
	for _, l := range ls {
		fl, ok := l.Listener.(interface{ File() (*os.File, error) })
		if !ok {
			fs.Close()
			return nil, fmt.Errorf("listener %q (%T) has no file descriptor to pass", l.Name, l.Listener)
		}
		if strings.Contains(l.Name, ":") {
			fs.Close()
			return nil, fmt.Errorf("listener name %q: a name cannot contain ':'", l.Name)
		}
		f, err := fl.File()
		if err != nil {
			fs.Close()
			return nil, fmt.Errorf("pass listener %q: %w", l.Name, err)
		}
		fs.names, fs.files = append(fs.names, l.Name), append(fs.files, f)
	}
	return fs, nil
}

// Pass sets cmd (not yet started) up to receive the sockets as descriptors
// 3 and on, with the variables Listeners reads. cmd.ExtraFiles must be empty.
func (fs *Files) Pass(cmd *exec.Cmd) error {
	if len(cmd.ExtraFiles) > 0 {
		return errors.New("pass sockets: the command already has extra files")
	}
	if cmd.Env == nil {
		cmd.Env = os.Environ()
	}
	cmd.ExtraFiles = append([]*os.File(nil), fs.files...)
	// Later entries win in os/exec: these override anything inherited.
	cmd.Env = append(cmd.Env, EnvFDs+"="+strconv.Itoa(len(fs.files)), EnvNames+"="+strings.Join(fs.names, ":"),
		EnvParent+"="+strconv.Itoa(os.Getpid()), EnvPID+"=")
	return nil
}

// Close closes the descriptors: the sockets close once no child holds them.
func (fs *Files) Close() error {
	var err error
	for _, f := range fs.files {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = cerr
		}
	}
	fs.files = nil
	return err
}
