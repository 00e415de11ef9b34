package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/proxy"
)

func init() { register(newUpCmd) }

// DefaultDataDir is where `runway up` keeps its state when --data-dir is not given.
const DefaultDataDir = ".runway"

func newUpCmd(g *Globals) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a Runway server and agent on this machine (zero configuration)",
		Long: `Up starts two processes: a server (control plane, data in DIR/server) and an
agent (data plane: instances and the proxy, data in DIR/agent). Either can be
restarted alone with "runway server --data-dir DIR/server" or
"runway agent --data-dir DIR/agent". Ctrl-C stops both; instances stop too
unless --keep.`,
		Example: "  runway up\n  runway up --data-dir /var/lib/runway --keep",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.dataDir, "data-dir", DefaultDataDir, "directory for the server's and agent's state")
	f.StringVar(&o.serverListen, "listen", "127.0.0.1:7040", "address of the server API")
	f.StringVar(&o.agentListen, "agent-listen", "127.0.0.1:7041", "address of the agent API")
	f.StringVar(&o.httpAddr, "http", proxy.DefaultHTTPAddr, "address of the proxy's HTTP listener (passed to the agent)")
	f.StringVar(&o.httpsAddr, "https", proxy.DefaultHTTPSAddr, "address of the proxy's HTTPS listener (passed to the agent)")
	f.StringVar(&o.portRange, "port-range", "20000-29999", "ports given to instances, MIN-MAX (passed to the agent)")
	f.BoolVar(&o.keep, "keep", false, "leave instances running when stopping")
	return cmd
}

// upOptions are the flags of `runway up`.
type upOptions struct {
	dataDir, serverListen, agentListen string
	httpAddr, httpsAddr, portRange     string
	keep                               bool
}

// child is a process started by up.
type child struct {
	name string
	cmd  *exec.Cmd
	done chan error
}

func startChild(g *Globals, name string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the runway binary: %w", err)
	}
	c := exec.Command(self, args...)
	c.Stdout, c.Stderr = g.Stderr, g.Stderr
	// Own process group: a Ctrl-C reaches only `up`, which then stops the
	// children in order (server first, then the agent).
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ch := &child{name: name, cmd: c, done: make(chan error, 1)}
	go func() { ch.done <- c.Wait() }()
	return ch, nil
}

// stop sends SIGTERM and waits, then SIGKILL after the grace period.
func (c *child) stop(grace time.Duration) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		return err
	case <-time.After(grace):
		_ = c.cmd.Process.Kill()
		return <-c.done
	}
}

func runUp(ctx context.Context, g *Globals, o upOptions) error {
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	for _, d := range []string{filepath.Join(abs, "server"), filepath.Join(abs, "agent")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
	}
	if _, _, err := parsePortRange(o.portRange); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	agentArgs := []string{"agent", "--data-dir", filepath.Join(abs, "agent"), "--listen", o.agentListen,
		"--http", o.httpAddr, "--https", o.httpsAddr, "--port-range", o.portRange}
	if !o.keep {
		agentArgs = append(agentArgs, "--stop-instances")
	}
	agent, err := startChild(g, "agent", agentArgs...)
	if err != nil {
		return err
	}
	agentURL := "http://" + o.agentListen
	if err := waitHealthy(ctx, agent, agentURL+"/v1/health", 20*time.Second); err != nil {
		_ = agent.stop(10 * time.Second)
		return err
	}
	server, err := startChild(g, "server", "server", "--data-dir", filepath.Join(abs, "server"), "--listen", o.serverListen,
		"--agent-url", agentURL, "--agent-token-file", filepath.Join(abs, "agent", "agent.token"), "--proxy-http", o.httpAddr)
	if err != nil {
		_ = agent.stop(10 * time.Second)
		return err
	}
	serverURL := "http://" + o.serverListen
	if err := waitHealthy(ctx, server, serverURL+"/v1/health", 20*time.Second); err != nil {
		_ = server.stop(10 * time.Second)
		_ = agent.stop(10 * time.Second)
		return err
	}
	rel := func(p string) string {
		if r, err := filepath.Rel(mustWd(), p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	tokenFile := rel(filepath.Join(abs, "server", "admin.token"))
	upRegisterProject(ctx, g, serverURL, filepath.Join(abs, "server", "admin.token"))
	fmt.Fprintf(g.Stdout, `Runway is up (data in %s)
  server API:  %s   admin token in %s
  agent API:   %s   token in %s
  services:    http://<service>.<environment>.localhost:%s and https://...:%s (CA: runway agent ca --data-dir %s)
To use it from another shell:
  export RUNWAY_SERVER=%s RUNWAY_TOKEN=$(cat %s)
Ctrl-C stops the server and the agent%s.
`, rel(abs), serverURL, tokenFile, agentURL, rel(filepath.Join(abs, "agent", "agent.token")),
		portOf(o.httpAddr), portOf(o.httpsAddr), rel(filepath.Join(abs, "agent")),
		serverURL, tokenFile, map[bool]string{true: " (instances keep running: --keep)", false: " and every instance"}[o.keep])
	RecordUpContext(g, o.serverListen, filepath.Join(abs, "server", "admin.token"), agentURL, filepath.Join(abs, "agent", "agent.token"))

	var exitErr error
	select {
	case <-ctx.Done():
	case err := <-server.done:
		server.done <- err
		exitErr = fmt.Errorf("the server exited unexpectedly (%v); stopping the agent", err)
	case err := <-agent.done:
		agent.done <- err
		exitErr = fmt.Errorf("the agent exited unexpectedly (%v); stopping the server", err)
	}
	fmt.Fprintln(g.Stderr, "stopping server and agent...")
	if err := server.stop(30 * time.Second); err != nil && exitErr == nil && !isSignalExit(err) {
		exitErr = fmt.Errorf("server: %w", err)
	}
	if err := agent.stop(2 * time.Minute); err != nil && exitErr == nil && !isSignalExit(err) {
		exitErr = fmt.Errorf("agent: %w", err)
	}
	return exitErr
}

// portOf returns the port of a host:port address (the address itself if it has none).
func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return addr
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !ee.Exited()
}

// waitHealthy polls url until it answers 200 or the child exits.
func waitHealthy(ctx context.Context, c *child, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	hc := &http.Client{Timeout: time.Second}
	for {
		resp, err := hc.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-c.done:
			c.done <- err
			return fmt.Errorf("%s exited before it was ready: %v (its messages are above)", c.name, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer %s within %s", c.name, url, timeout)
		}
	}
}

func mustWd() string {
	wd, _ := os.Getwd()
	return wd
}
