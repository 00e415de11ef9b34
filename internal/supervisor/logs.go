package supervisor

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/redact"
)

// Default log retention per instance: 3 files of 10 MiB.
const (
	DefaultLogMaxBytes = 10 << 20
	DefaultLogFiles    = 3
	maxLineBytes       = 64 << 10
)

// logFile writes time-stamped lines to path, rotating it to path.1 ..
// path.(files-1) when it would grow past maxBytes.
type logFile struct {
	mu       sync.Mutex
	path     string
	maxBytes int64
	files    int
	f        *os.File
	size     int64
	// secrets returns the values the instance received (nil: none, or not
	// known yet after an agent restart): they never reach the log file.
	secrets func() map[string]string
}

func openLogFile(path string, maxBytes int64, files int) (*logFile, error) {
	if err := os.MkdirAll(filepath.Dir(path), fsutil.DirMode); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, fsutil.FileMode)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &logFile{path: path, maxBytes: maxBytes, files: files, f: f, size: st.Size()}, nil
}

func formatLine(t time.Time, stream, text string) []byte {
	return []byte(t.UTC().Format(time.RFC3339Nano) + " " + stream + " " + text + "\n")
}

func parseLine(s string) (agentapi.LogLine, bool) {
	ts, rest, ok := strings.Cut(s, " ")
	if !ok {
		return agentapi.LogLine{}, false
	}
	stream, text, ok := strings.Cut(rest, " ")
	if !ok {
		return agentapi.LogLine{}, false
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return agentapi.LogLine{}, false
	}
	return agentapi.LogLine{Time: t, Stream: stream, Text: text}, true
}

// write writes a line stamped now. The stamp is taken under the file's lock,
// so lines of stdout and stderr (read by separate goroutines) are in the file
// in the order of their times.
func (l *logFile) write(stream, text string) { l.writeAt(time.Time{}, stream, text) }

// writeAt writes a line stamped t (a container's lines keep the engine's
// times; zero is now), the group's secret values redacted.
func (l *logFile) writeAt(t time.Time, stream, text string) {
	if l.secrets != nil {
		text = redact.Values(text, l.secrets())
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if t.IsZero() {
		t = time.Now()
	}
	line := formatLine(t, stream, text)
	if l.f == nil {
		return
	}
	if l.size > 0 && l.size+int64(len(line)) > l.maxBytes {
		l.rotate()
	}
	n, _ := l.f.Write(line)
	l.size += int64(n)
}

// lastWrite is when the file was last written to (zero without one).
func (l *logFile) lastWrite() time.Time {
	st, err := os.Stat(l.path)
	if err != nil || st.Size() == 0 {
		return time.Time{}
	}
	return st.ModTime()
}

func (l *logFile) rotate() {
	l.f.Close()
	os.Remove(fmt.Sprintf("%s.%d", l.path, l.files-1))
	for i := l.files - 2; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.path, i), fmt.Sprintf("%s.%d", l.path, i+1))
	}
	if l.files > 1 {
		os.Rename(l.path, l.path+".1")
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fsutil.FileMode)
	if err != nil {
		l.f = nil
		return
	}
	l.f, l.size = f, 0
}

func (l *logFile) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}

// logFiles lists the files of a log, oldest first.
func logFiles(path string, files int) []string {
	var out []string
	for i := files - 1; i >= 1; i-- {
		p := fmt.Sprintf("%s.%d", path, i)
		if _, err := os.Stat(p); err == nil {
			out = append(out, p)
		}
	}
	return append(out, path)
}

// readLog emits the lines of the log at path that match q, oldest first,
// then (with q.Follow) new lines as they are written, across rotations,
// until ctx ends.
func readLog(ctx context.Context, path string, files int, q agentapi.LogQuery, emit func(agentapi.LogLine) error) error {
	var tail []agentapi.LogLine
	push := func(l agentapi.LogLine) error {
		if !q.Match(l) {
			return nil
		}
		if q.Tail > 0 {
			tail = append(tail, l)
			if len(tail) > q.Tail {
				tail = tail[1:]
			}
			return nil
		}
		return emit(l)
	}
	paths := logFiles(path, files)
	var cur *os.File
	var pending []byte
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return err
		}
		if i == len(paths)-1 && q.Follow {
			cur = f
			break
		}
		err = scanLines(f, push)
		f.Close()
		if err != nil {
			return err
		}
	}
	if cur == nil {
		for _, l := range tail {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	defer func() { cur.Close() }()
	// Existing lines of the current file, then follow it.
	readAvail := func() error {
		b, err := io.ReadAll(cur)
		if err != nil {
			return err
		}
		pending = append(pending, b...)
		for {
			i := bytes.IndexByte(pending, '\n')
			if i < 0 {
				return nil
			}
			if l, ok := parseLine(string(pending[:i])); ok {
				if err := push(l); err != nil {
					return err
				}
			}
			pending = pending[i+1:]
		}
	}
	if err := readAvail(); err != nil {
		return err
	}
	for _, l := range tail {
		if err := emit(l); err != nil {
			return err
		}
	}
	q.Tail, tail = 0, nil
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			// Lines written just before the end (an instance's last words).
			return readAvail()
		case <-tick.C:
		}
		if err := readAvail(); err != nil {
			return err
		}
		// Rotated: finish the old file, continue with the new one. The old
		// file is read again here: a line may have gone into it after the
		// read above and before the rotation.
		st1, err1 := cur.Stat()
		st2, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && !os.SameFile(st1, st2) {
			nf, err := os.Open(path)
			if err != nil {
				continue
			}
			if err := readAvail(); err != nil {
				nf.Close()
				return err
			}
			cur.Close()
			cur, pending = nf, nil
			if err := readAvail(); err != nil {
				return err
			}
		}
	}
}

func scanLines(r io.Reader, push func(agentapi.LogLine) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 2*maxLineBytes)
	for sc.Scan() {
		if l, ok := parseLine(sc.Text()); ok {
			if err := push(l); err != nil {
				return err
			}
		}
	}
	return sc.Err()
}

// logPipe is the FIFO between an instance and the agent. The instance gets
// it opened read-write, so its writes never fail with EPIPE while the agent
// is down (they wait in the 1 MiB pipe buffer until a new agent reads it);
// the agent reads it and writes time-stamped lines to the log file.
type logPipe struct {
	path string
	r    *os.File
	done chan struct{}
}

func openLogPipe(path, stream string, out *logFile) (*logPipe, error) {
	if err := syscall.Mkfifo(path, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("create log pipe %s: %w", path, err)
	}
	// O_RDWR: opening never blocks and reads never see EOF between restarts.
	r, err := os.OpenFile(path, os.O_RDWR|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("open log pipe %s: %w", path, err)
	}
	setPipeSize(r, 1<<20)
	p := &logPipe{path: path, r: r, done: make(chan struct{})}
	go p.copy(stream, out)
	return p, nil
}

// writer opens the pipe for an instance's stdout or stderr.
func (p *logPipe) writer() (*os.File, error) {
	return os.OpenFile(p.path, os.O_RDWR, 0)
}

func (p *logPipe) copy(stream string, out *logFile) {
	defer close(p.done)
	br := bufio.NewReaderSize(p.r, 4<<10) // longer lines are joined below
	var partial []byte
	for {
		chunk, err := br.ReadSlice('\n')
		partial = append(partial, chunk...)
		if err == nil || len(partial) >= maxLineBytes {
			out.write(stream, strings.TrimRight(string(partial), "\r\n"))
			partial = partial[:0]
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			if len(partial) > 0 {
				out.write(stream, string(partial))
			}
			return
		}
	}
}

// close stops reading after what is already buffered has been copied (up to
// a short deadline).
func (p *logPipe) close() {
	p.r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	<-p.done
	p.r.Close()
}

func setPipeSize(f *os.File, n int) {
	if rc, err := f.SyscallConn(); err == nil {
		rc.Control(func(fd uintptr) {
			const fSetPipeSz = 1031
			syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSz, uintptr(n))
		})
	}
}
