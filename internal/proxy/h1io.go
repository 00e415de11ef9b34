package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
)

// upIO is the I/O of a pooled target connection: the request written
// and the wait for the answer in one step. A connection's reads after a
// request would otherwise start with a read that finds nothing yet
// (EAGAIN: the target has not answered), then wait for the poller and read
// again — one wasted system call per request. Here the request is written
// from inside syscall.RawConn.Read's callback, which the runtime calls after
// arming the wait (so the answer's readiness, which can only come after the
// request, is never missed); the callback then declines to read, the
// goroutine waits for readability, and the one read that follows finds
// the answer.
//
// Writes are held (bufio.Writer flushes into pending) until the next Read.
// A write the socket does not take at once (EAGAIN: the send buffer is full,
// a head of hundreds of KiB) is finished with the connection's ordinary
// Write. Deadlines and Close work as for any read: RawConn.Read waits
// through the same poller. A target that closed the connection while it
// was idle answers the write with a reset, which wakes the wait.
type upIO struct {
	c       net.Conn
	rc      syscall.RawConn // nil: no file descriptor (plain reads and writes)
	pending []byte

	// The state of one Read's callback (a method value made once: a
	// closure per Read would allocate).
	step    func(fd uintptr) bool
	p       []byte
	written int
	n       int
	wrote   bool
	werr    error
	rerr    error
}

func newUpIO(c net.Conn) *upIO {
	u := &upIO{c: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			u.rc = rc
			u.step = u.writeThenRead
		}
	}
	return u
}

func (u *upIO) Write(p []byte) (int, error) {
	if u.rc == nil {
		return u.c.Write(p)
	}
	u.pending = append(u.pending, p...)
	return len(p), nil
}

// writeThenRead is the callback of RawConn.Read: first call, write the
// pending request and decline (wait); later calls, read.
func (u *upIO) writeThenRead(fd uintptr) bool {
	if !u.wrote {
		u.wrote = true
		for u.written < len(u.pending) {
			k, e := syscall.Write(int(fd), u.pending[u.written:])
			if e == syscall.EINTR {
				continue
			}
			if e != nil {
				if e != syscall.EAGAIN {
					u.werr = e
				}
				return true // the rest in Read, with the poller
			}
			u.written += k
		}
		return false // wait until the answer is readable
	}
	for {
		k, e := syscall.Read(int(fd), u.p)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		u.n, u.rerr = k, e
		return true
	}
}

func (u *upIO) Read(p []byte) (int, error) {
	if len(u.pending) == 0 || u.rc == nil || len(p) == 0 {
		return u.c.Read(p)
	}
	u.p, u.written, u.n, u.wrote, u.werr, u.rerr = p, 0, 0, false, nil, nil
	err := u.rc.Read(u.step)
	written, n, werr, rerr := u.written, u.n, u.werr, u.rerr
	u.p, u.werr, u.rerr = nil, nil, nil
	if werr != nil {
		u.pending = u.pending[:0]
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: u.c.LocalAddr(), Addr: u.c.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	}
	if written < len(u.pending) && err == nil {
		// The socket took part of the request: the rest with Write, then
		// an ordinary read.
		_, werr := u.c.Write(u.pending[written:])
		u.pending = u.pending[:0]
		if werr != nil {
			return 0, werr
		}
		return u.c.Read(p)
	}
	u.pending = u.pending[:0]
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: u.c.LocalAddr(), Addr: u.c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
