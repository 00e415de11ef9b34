package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/activation"
)

// The restart policy of `runway up`: a child that exits unexpectedly is
// started again after restartInitial, doubling up to restartMax while it
// keeps failing; the delay goes back to restartInitial once a child stayed
// up for restartResetAfter.
const (
	restartInitial    = 500 * time.Millisecond
	restartMax        = 10 * time.Second
	restartResetAfter = 10 * time.Second
	readyTimeout      = 20 * time.Second
)

// supervised is a child of up (the server or the agent) and how to start it
// again. Only the goroutine running superviseAll touches cur until it
// returns.
type supervised struct {
	name      string
	bin       string // the runway binary (default: this process's executable)
	args      []string
	sockets   *activation.Files // passed to every start (the agent's), or nil
	healthURL string            // GET answers {"pid": N} once the child is ready
	out       io.Writer
	log       *slog.Logger
	// resetAfter overrides restartResetAfter (tests).
	resetAfter time.Duration
	cur        *child
}

// child is one run of a supervised process.
type child struct {
	cmd     *exec.Cmd
	started time.Time
	done    chan struct{} // closed when it exited; err is then set
	err     error
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// exitStatus says how a child ended: "exit status 2", "signal: killed".
func (c *child) exitStatus() string {
	if c.err == nil {
		return "exit status 0"
	}
	return c.err.Error()
}

func (s *supervised) spawn() *child {
	c := &child{started: time.Now(), done: make(chan struct{})}
	bin := s.bin
	if bin == "" {
		self, err := os.Executable()
		if err != nil {
			c.err = fmt.Errorf("find the runway binary: %w", err)
			close(c.done)
			return c
		}
		bin = self
	}
	c.cmd = exec.Command(bin, s.args...)
	c.cmd.Stdout, c.cmd.Stderr = s.out, s.out
	// Own process group: a Ctrl-C reaches only up, which then stops the
	// children in order (server first, then the agent).
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.sockets != nil {
		if err := s.sockets.Pass(c.cmd); err != nil {
			c.err = err
			close(c.done)
			return c
		}
	}
	if err := c.cmd.Start(); err != nil {
		c.err = fmt.Errorf("start %s: %w", s.name, err)
		close(c.done)
		return c
	}
	go func() { c.err = c.cmd.Wait(); close(c.done) }()
	return c
}

// start runs the child for the first time and waits until it is ready:
// failing here fails up (nothing is retried before the first success).
func (s *supervised) start(ctx context.Context) error {
	s.cur = s.spawn()
	return s.waitReady(ctx, s.cur)
}

// waitReady polls the health URL until it answers with the child's own pid:
// something else answering on the address (another runway) is not ready.
func (s *supervised) waitReady(ctx context.Context, c *child) error {
	deadline := time.Now().Add(readyTimeout)
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	other := ""
	for {
		if c.exited() {
			return fmt.Errorf("the %s exited before it was ready (%s); its messages are above", s.name, c.exitStatus())
		}
		if pid, err := healthPID(ctx, hc, s.healthURL); err == nil {
			if pid == c.cmd.Process.Pid {
				return nil
			}
			other = fmt.Sprintf("; what answers on %s is another process (pid %d), not the %s up started (pid %d): is another runway running?",
				s.healthURL, pid, s.name, c.cmd.Process.Pid)
		}
		if time.Now().After(deadline) {
			_ = c.cmd.Process.Kill()
			<-c.done
			return fmt.Errorf("the %s did not answer %s within %s%s", s.name, s.healthURL, readyTimeout, other)
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func healthPID(ctx context.Context, hc *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var h struct {
		PID int `json:"pid"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&h); err != nil {
		return 0, fmt.Errorf("GET %s: %w", url, err)
	}
	return h.PID, nil
}

// supervise restarts the child whenever it exits, until ctx ends.
func (s *supervised) supervise(ctx context.Context) {
	delay := restartInitial
	resetAfter := restartResetAfter
	if s.resetAfter > 0 {
		resetAfter = s.resetAfter
	}
	for {
		c := s.cur
		select {
		case <-ctx.Done():
			return
		case <-c.done:
		}
		uptime := time.Since(c.started)
		if uptime >= resetAfter {
			delay = restartInitial
		}
		pid := 0
		if c.cmd != nil && c.cmd.Process != nil {
			pid = c.cmd.Process.Pid
		}
		s.log.Warn("child exited unexpectedly; restarting it", "child", s.name, "pid", pid, "status", c.exitStatus(),
			"uptime", uptime.Round(time.Millisecond).String(), "restart_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(2*delay, restartMax)
		s.cur = s.spawn()
		if err := s.waitReady(ctx, s.cur); err != nil {
			if ctx.Err() == nil {
				s.log.Warn("restarted child not ready", "child", s.name, "err", err)
			}
			continue
		}
		s.log.Info("child restarted", "child", s.name, "pid", s.cur.cmd.Process.Pid)
	}
}

// superviseAll supervises every child until ctx ends (Ctrl-C, SIGTERM).
func superviseAll(ctx context.Context, ss ...*supervised) {
	var wg sync.WaitGroup
	for _, s := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.supervise(ctx)
		}()
	}
	wg.Wait()
}

// stop sends sig and waits, then SIGKILL after the grace period. A child
// that ends on the signal (or exits 0) stopped as asked.
func (s *supervised) stop(sig syscall.Signal, grace time.Duration) error {
	c := s.cur
	if c == nil || c.cmd == nil || c.exited() {
		return nil
	}
	_ = c.cmd.Process.Signal(sig)
	select {
	case <-c.done:
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("did not stop within %s of %s: killed", grace, sig)
	}
	var ee *exec.ExitError
	if c.err != nil && !(errors.As(c.err, &ee) && !ee.Exited()) {
		return c.err
	}
	return nil
}
