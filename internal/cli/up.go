package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/activation"
	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/dirlock"
	"github.com/runwayhq/runway/internal/proxy"
)

// DefaultDataDir is where `runway up` keeps its state when --data-dir is not given.
const DefaultDataDir = ".runway"

func newUpCmd(g *Globals) *cobra.Command {
	var o upOptions
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run a Runway server and agent on this machine (zero configuration)",
		Long: `Up starts two processes and supervises them: a server (control plane, data
in DIR/server) and an agent (data plane: instances and the proxy, data in
DIR/agent). A server or agent that exits without being asked to is started
again (after 0.5 s, doubling to 10 s while it keeps failing, back to 0.5 s
once it stayed up 10 s); the instances
and their traffic never depend on the server, and an agent restart keeps
them running.

Up holds the proxy's listening sockets (--http, --https) and the agent API's
(--agent-listen) itself and hands them to every agent it starts, so while an
agent restarts, connections wait in the kernel's backlog instead of being
refused. Only one up runs per data dir.

Ctrl-C (or SIGTERM) stops the server, then the agent; instances stop too
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
	f.StringVar(&o.httpAddr, "http", proxy.DefaultHTTPAddr, "address of the proxy's HTTP listener (held by up, passed to the agent)")
	f.StringVar(&o.httpsAddr, "https", proxy.DefaultHTTPSAddr, "address of the proxy's HTTPS listener (held by up, passed to the agent)")
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

func runUp(ctx context.Context, g *Globals, o upOptions) error {
	abs, err := filepath.Abs(o.dataDir)
	if err != nil {
		return err
	}
	serverDir, agentDir := filepath.Join(abs, "server"), filepath.Join(abs, "agent")
	for _, d := range []string{serverDir, agentDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("create data directory: %w", err)
		}
	}
	if _, _, err := parsePortRange(o.portRange); err != nil {
		return err
	}
	// A second up on this dir fails here, before it touches a port.
	lock, err := dirlock.Acquire(abs, "runway up")
	if err != nil {
		return err
	}
	defer lock.Release()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(g.Stderr, nil)).With("process", "runway up")

	socks, err := listenAgentSockets(o)
	if err != nil {
		return err
	}
	defer socks.Close()

	agentURL := "http://" + o.agentListen
	agentArgs := []string{"agent", "--data-dir", agentDir, "--listen", o.agentListen,
		"--http", o.httpAddr, "--https", o.httpsAddr, "--port-range", o.portRange}
	if !o.keep {
		// SIGINT (what up sends on Ctrl-C) stops the instances; a SIGTERM
		// from anyone else is a restart that leaves them running.
		agentArgs = append(agentArgs, "--stop-instances-on-interrupt")
	}
	agentChild := &supervised{name: "agent", args: agentArgs, sockets: socks, healthURL: agentURL + "/v1/health",
		out: g.Stderr, log: log}
	serverURL := "http://" + o.serverListen
	serverChild := &supervised{name: "server", args: []string{"server", "--data-dir", serverDir, "--listen", o.serverListen,
		"--agent-url", agentURL, "--agent-token-file", filepath.Join(agentDir, agent.TokenFileName), "--proxy-http", o.httpAddr},
		healthURL: serverURL + "/v1/health", out: g.Stderr, log: log}
	agentStop := syscall.SIGTERM
	if !o.keep {
		agentStop = syscall.SIGINT
	}

	// Nothing is left running when up fails or is interrupted while starting.
	startErr := func(err error) error {
		serverChild.stop(syscall.SIGTERM, 30*time.Second)
		agentChild.stop(agentStop, 2*time.Minute)
		if ctx.Err() != nil {
			return errors.New("interrupted before Runway was up; the server and the agent were stopped")
		}
		return err
	}
	if err := agentChild.start(ctx); err != nil {
		return startErr(err)
	}
	if err := serverChild.start(ctx); err != nil {
		return startErr(err)
	}
	// Steps that need a healthy server go here, before the banner.

	rel := func(p string) string {
		if r, err := filepath.Rel(mustWd(), p); err == nil && !strings.HasPrefix(r, "..") {
			return r
		}
		return p
	}
	tokenFile := rel(filepath.Join(serverDir, "admin.token"))
	upRegisterProject(ctx, g, serverURL, filepath.Join(serverDir, "admin.token"))
	fmt.Fprintf(g.Stdout, `Runway is up (data in %s)
  server API:  %s   admin token in %s
  agent API:   %s   token in %s
  services:    http://<service>.<environment>.localhost:%s and https://...:%s (CA: runway agent ca --data-dir %s)
To use it from another shell:
  export RUNWAY_SERVER=%s RUNWAY_TOKEN=$(cat %s)
Up restarts the server or the agent if one exits. Ctrl-C stops the server and the agent%s.
`, rel(abs), serverURL, tokenFile, agentURL, rel(filepath.Join(agentDir, agent.TokenFileName)),
		portOf(o.httpAddr), portOf(o.httpsAddr), rel(agentDir),
		serverURL, tokenFile, map[bool]string{true: " (instances keep running: --keep)", false: " and every instance"}[o.keep])
	RecordUpContext(g, o.serverListen, filepath.Join(serverDir, "admin.token"), agentURL, filepath.Join(agentDir, agent.TokenFileName))

	superviseAll(ctx, serverChild, agentChild)

	fmt.Fprintln(g.Stderr, "stopping server and agent...")
	var exitErr error
	if err := serverChild.stop(syscall.SIGTERM, 30*time.Second); err != nil {
		exitErr = fmt.Errorf("server: %w", err)
	}
	if err := agentChild.stop(agentStop, 2*time.Minute); err != nil && exitErr == nil {
		exitErr = fmt.Errorf("agent: %w", err)
	}
	return exitErr
}

// listenAgentSockets binds the sockets up holds for its agents: the proxy's
// HTTP and HTTPS listeners and the agent API.
func listenAgentSockets(o upOptions) (*activation.Files, error) {
	var ls []activation.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	for _, s := range []struct{ name, addr, flag string }{
		{"http", o.httpAddr, "--http"}, {"https", o.httpsAddr, "--https"}, {"api", o.agentListen, "--agent-listen"},
	} {
		if s.addr == proxy.Off && s.name != "api" {
			continue
		}
		ln, err := net.Listen("tcp", s.addr)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("listen on %s (%s): %w; is another runway up or agent running? Stop it or choose another %s", s.addr, s.flag, err, s.flag)
		}
		ls = append(ls, activation.Listener{Name: s.name, Listener: ln})
	}
	// The passed copies keep the sockets open; up never accepts on them.
	defer closeAll()
	return activation.NewFiles(ls)
}

// portOf returns the port of a host:port address (the address itself if it has none).
func portOf(addr string) string {
	if _, p, err := net.SplitHostPort(addr); err == nil {
		return p
	}
	return addr
}

func mustWd() string {
	wd, _ := os.Getwd()
	return wd
}
