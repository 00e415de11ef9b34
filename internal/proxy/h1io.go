package proxy

import (
	"io"
	"net"
	"os"
	"syscall"
)

// deferConn joins a write and the wait for the answer into one step. A
// read right after a request (to a target) or a response (to a client)
// would otherwise start with a read that finds nothing yet (EAGAIN: the
// peer has not answered), then wait for the poller and read again — one
// wasted system call per exchange on each side. Writes made while hold is
// set are kept in pending; the next Read writes them from inside
// syscall.RawConn.Read's callback, which the runtime calls after arming the
// wait (so the answer's readiness, which can only come after the write, is
// never missed); the callback then declines to read, the goroutine waits
// for readability, and the one read that follows finds the answer.
//
// Pooled target connections (h1Pool) hold every write (but see heldIdle
// below): a request is always followed by the read of its answer. A client connection on the fast path
// holds only the end of a response (fastConn.finish), and the fast path
// sends what is still held before anything else may use the connection
// (fastConn.sendHeld): another Write sends it first too. A write the socket
// does not take at once (EAGAIN) is finished with the connection's ordinary
// Write. Deadlines and Close work as for any read: RawConn.Read waits
// through the same poller. A target that closed an idle connection answers
// the write with a reset, which wakes the wait; one that only half-closed
// it and lingers (reads on, answers nothing) would leave the wait to its
// final close or the response header timeout, so h1Pool holds only on
// connections idle for less than heldIdle (a target's idle timeout is
// seconds; under load connections are idle for microseconds). A client
// that half-closes right after a request is missed the same way: the fast
// path's held wait for its next request lasts heldIdle at most, then goes
// on with a plain read (fastConn.serve, readHead).
//
// One goroutine at a time writes and reads with pending set (the fast
// path's watch of the client reads only while nothing is held).
type deferConn struct {
	net.Conn
	rc      syscall.RawConn // nil: no file descriptor (writes go out at once)
	hold    bool
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

func newDeferConn(c net.Conn) *deferConn {
	d := &deferConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if rc, err := sc.SyscallConn(); err == nil {
			d.rc = rc
			d.step = d.writeThenRead
		}
	}
	return d
}

func (d *deferConn) Write(p []byte) (int, error) {
	if d.hold && d.rc != nil {
		d.pending = append(d.pending, p...)
		return len(p), nil
	}
	if err := d.sendHeld(); err != nil {
		return 0, err
	}
	return d.Conn.Write(p)
}

// held reports whether writes are held for the next Read.
func (d *deferConn) held() bool { return len(d.pending) > 0 && d.rc != nil }

// sendHeld writes what is held.
func (d *deferConn) sendHeld() error {
	if len(d.pending) == 0 {
		return nil
	}
	_, err := d.Conn.Write(d.pending)
	d.pending = d.pending[:0]
	return err
}

// ReadFrom keeps the connection's own (splice) copy.
func (d *deferConn) ReadFrom(r io.Reader) (int64, error) {
	if err := d.sendHeld(); err != nil {
		return 0, err
	}
	return io.Copy(d.Conn, r)
}

// CloseWrite half-closes a TCP connection.
func (d *deferConn) CloseWrite() error {
	if err := d.sendHeld(); err != nil {
		return err
	}
	if cw, ok := d.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// writeThenRead is the callback of RawConn.Read: first call, write what is
// held and decline (wait); later calls, read.
func (d *deferConn) writeThenRead(fd uintptr) bool {
	if !d.wrote {
		d.wrote = true
		for d.written < len(d.pending) {
			k, e := syscall.Write(int(fd), d.pending[d.written:])
			if e == syscall.EINTR {
				continue
			}
			if e != nil {
				if e != syscall.EAGAIN {
					d.werr = e
				}
				return true // the rest in Read, with the poller
			}
			d.written += k
		}
		return false // wait until the answer is readable
	}
	for {
		k, e := syscall.Read(int(fd), d.p)
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		}
		d.n, d.rerr = k, e
		return true
	}
}

func (d *deferConn) Read(p []byte) (int, error) {
	if len(d.pending) == 0 || d.rc == nil || len(p) == 0 {
		return d.Conn.Read(p)
	}
	d.p, d.written, d.n, d.wrote, d.werr, d.rerr = p, 0, 0, false, nil, nil
	err := d.rc.Read(d.step)
	written, n, werr, rerr := d.written, d.n, d.werr, d.rerr
	d.p, d.werr, d.rerr = nil, nil, nil
	if werr != nil {
		d.pending = d.pending[:0]
		return 0, &net.OpError{Op: "write", Net: "tcp", Source: d.LocalAddr(), Addr: d.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
	}
	if written < len(d.pending) {
		if err != nil && written == 0 {
			// The wait failed before anything was written (a deadline
			// passed, the connection closed): keep it for sendHeld.
			return 0, err
		}
		// The socket took part of it: the rest with Write, then an
		// ordinary read.
		_, werr := d.Conn.Write(d.pending[written:])
		d.pending = d.pending[:0]
		if werr != nil {
			return 0, werr
		}
		if err != nil {
			return 0, err
		}
		return d.Conn.Read(p)
	}
	d.pending = d.pending[:0]
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: d.LocalAddr(), Addr: d.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	}
	if n == 0 {
		return 0, io.EOF
	}
	return n, nil
}
