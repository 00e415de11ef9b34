package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/activation"
	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/localca"
	"github.com/runwayhq/runway/internal/proxy"
)

func defaultAgentDir() string {
	if d := os.Getenv("RUNWAY_AGENT_DIR"); d != "" {
		return d
	}
	return filepath.Join(".runway", "agent")
}

func newAgentCmd(g *Globals) *cobra.Command {
	var (
		dataDir, listen, portRange, logLevel string
		httpAddr, httpsAddr, accessLog       string
		metricsListen, dockerHost            string
		drainTimeout                         time.Duration
		stopInstances, stopOnInterrupt       bool
		proxyLimits                          = httplimit.Default
		apiLimits                            = httplimit.Default
		headerTimeout                        time.Duration
		maxConns                             int
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent: supervises service instances on this machine (local target)",
		Long: `Run the agent, the data plane of the local target: it starts, checks,
restarts and stops service instances on this machine and serves the agent
API on loopback, protected by the token it writes to DIR/agent.token.

On SIGTERM or SIGINT the agent stops accepting connections, finishes the
requests in flight, and exits leaving the instances running; the next agent
started on the same --data-dir re-adopts them (same pids) and routes to them
at once. Use --stop-instances to stop them instead (or
--stop-instances-on-interrupt to stop them on SIGINT only, as runway up does
on Ctrl-C).

Sockets passed with systemd's socket activation convention (LISTEN_FDS,
named "http", "https" and "api" in LISTEN_FDNAMES; unnamed ones are taken as
http then https) replace --http, --https and --listen. runway up passes them,
so connections wait in the kernel's backlog while the agent restarts instead
of being refused; see docs/operations.md for a systemd unit.`,
		Example: `  runway agent --data-dir .runway/agent --listen 127.0.0.1:7041
  runway agent --data-dir /var/lib/runway/agent --port-range 30000-30999 --stop-instances
  runway agent status --data-dir .runway/agent`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			lo, hi, err := parsePortRange(portRange)
			if err != nil {
				return err
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return UsageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			if err := proxyLimits.Validate(""); err != nil {
				return UsageErrorf("%v", err)
			}
			if err := apiLimits.Validate("api-"); err != nil {
				return UsageErrorf("%v", err)
			}
			if headerTimeout < 0 || maxConns < 0 {
				return UsageErrorf("--response-header-timeout (%s) and --max-conns-per-target (%d) must not be negative; 0 means no limit", headerTimeout, maxConns)
			}
			logger := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			var access io.Writer
			switch accessLog {
			case "":
			case "-":
				access = g.Stdout
			default:
				f, err := os.OpenFile(accessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
				if err != nil {
					return fmt.Errorf("open access log: %w", err)
				}
				defer f.Close()
				access = f
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return fmt.Errorf("data dir %s cannot be created: %w (choose a writable --data-dir)", dataDir, err)
			}
			passed, err := passedListeners()
			if err != nil {
				return err
			}
			// Signals are caught from here on: a SIGTERM during start-up
			// still ends in an orderly stop.
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
			defer signal.Stop(sigs)
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			p, err := proxy.New(proxy.Options{HTTPAddr: httpAddr, HTTPSAddr: httpsAddr, CADir: filepath.Join(dataDir, "ca"),
				HTTPListener: passed["http"], HTTPSListener: passed["https"],
				DrainTimeout: drainTimeout, AccessLog: access, Registerer: reg, Logger: logger,
				Limits: proxyLimits, ResponseHeaderTimeout: noLimitIfZero(headerTimeout), MaxConnsPerTarget: noCapIfZero(maxConns)})
			if err != nil {
				closeListeners(passed)
				return err
			}
			eng, err := connectEngine(context.Background(), dockerHost, logger)
			if err != nil {
				p.Close()
				closeListeners(passed)
				return err
			}
			if eng != nil {
				defer eng.Close()
			}
			ao := agent.Options{DataDir: dataDir, Listen: listen, APIListener: passed["api"], PortMin: lo, PortMax: hi,
				StopInstances: stopInstances, Version: Version, Logger: logger, Proxy: p, Metrics: reg, HTTP: apiLimits, MetricsListen: metricsListen}
			ao.Supervisor.Engine = eng
			a, err := agent.New(ao)
			if err != nil {
				p.Close()
				closeListeners(passed)
				return err
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go func() {
				select {
				case sig := <-sigs:
					if sig == syscall.SIGINT && stopOnInterrupt {
						a.StopInstancesOnExit()
					}
					cancel()
				case <-ctx.Done():
				}
			}()
			for _, name := range []string{"http", "https", "api"} {
				if ln := passed[name]; ln != nil {
					logger.Info("serving a passed socket", "name", name, "addr", ln.Addr().String())
				}
			}
			fmt.Fprintf(g.Stderr, "runway agent %s listening on %s (data dir %s, token in %s); proxy on http://%s and https://%s\n",
				Version, a.URL(), dataDir, filepath.Join(dataDir, agent.TokenFileName), addrOf(passed["http"], httpAddr), addrOf(passed["https"], httpsAddr))
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultAgentDir(), "directory of the agent's state, token and logs (env RUNWAY_AGENT_DIR)")
	f.StringVar(&listen, "listen", "127.0.0.1:7041", "loopback address of the agent API")
	f.StringVar(&portRange, "port-range", "20000-29999", "ports given to instances, MIN-MAX")
	f.StringVar(&dockerHost, "docker-host", "", engineFlagHelp)
	f.BoolVar(&stopInstances, "stop-instances", false, "stop every instance when the agent exits (default: leave them running)")
	f.BoolVar(&stopOnInterrupt, "stop-instances-on-interrupt", false, "stop every instance when the agent exits on SIGINT; SIGTERM still leaves them running (runway up uses it)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&httpAddr, "http", proxy.DefaultHTTPAddr, "address of the proxy's HTTP listener")
	f.StringVar(&metricsListen, "metrics-listen", "", "also serve /metrics here without a token, for a Prometheus scraper (on the API's address it needs the token)")
	f.StringVar(&httpsAddr, "https", proxy.DefaultHTTPSAddr, "address of the proxy's HTTPS listener (certificates from the local CA in DATA_DIR/ca)")
	f.DurationVar(&drainTimeout, "drain-timeout", agentapi.DefaultDrainTimeout, "longest wait for requests in flight on instances taken out of traffic, unless a scale or delete call gives its own drain_timeout")
	f.StringVar(&accessLog, "access-log", "", "write a JSON line per request to this file (- for stdout); off by default")
	f.DurationVar(&proxyLimits.Body, "body-timeout", httplimit.DefaultBody, "time a client has to send a request body through the proxy; 408 after it (0: no limit)")
	f.DurationVar(&proxyLimits.Idle, "idle-timeout", httplimit.DefaultIdle, "how long an idle keep-alive connection to the proxy stays open (0: no limit)")
	f.DurationVar(&headerTimeout, "response-header-timeout", proxy.DefaultResponseHeaderTimeout, "longest wait for an instance's response headers; 504 after it (0: no limit)")
	f.IntVar(&maxConns, "max-conns-per-target", proxy.DefaultMaxConnsPerTarget, "requests in flight the proxy sends one instance at most; over it another instance, else 503 (0: no cap)")
	f.DurationVar(&apiLimits.Body, "api-body-timeout", httplimit.DefaultBody, "time a client has to send a request body to the agent API (0: no limit)")
	f.DurationVar(&apiLimits.Idle, "api-idle-timeout", httplimit.DefaultIdle, "how long an idle keep-alive connection to the agent API stays open (0: no limit)")
	cmd.AddCommand(newAgentStatusCmd(g))
	cmd.AddCommand(newAgentCACmd(g))
	return cmd
}

// passedListeners takes the sockets passed by runway up or systemd (see
// internal/activation), by name: http, https, api.
func passedListeners() (map[string]net.Listener, error) {
	ls, err := activation.Listeners()
	if err != nil {
		return nil, err
	}
	out := map[string]net.Listener{}
	positional := []string{"http", "https"}
	for i, l := range ls {
		name := l.Name
		if name == "" || name == "unknown" {
			if i >= len(positional) {
				closeListeners(out)
				return nil, fmt.Errorf("socket %d of %s has no name and only 2 unnamed sockets (http, https) are understood: name them in %s", i+1, activation.EnvFDs, activation.EnvNames)
			}
			name = positional[i]
		}
		if name != "http" && name != "https" && name != "api" {
			closeListeners(out)
			l.Close()
			return nil, fmt.Errorf("socket %q passed in %s: want http, https or api (under systemd, set FileDescriptorName= in the .socket unit)", name, activation.EnvNames)
		}
		if out[name] != nil {
			closeListeners(out)
			l.Close()
			return nil, fmt.Errorf("two sockets named %q passed in %s", name, activation.EnvNames)
		}
		out[name] = l.Listener
	}
	return out, nil
}

func closeListeners(m map[string]net.Listener) {
	for _, ln := range m {
		ln.Close()
	}
}

func addrOf(ln net.Listener, flag string) string {
	if ln != nil {
		return ln.Addr().String()
	}
	return flag
}

func parsePortRange(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, UsageErrorf("--port-range %q: want MIN-MAX with 1 <= MIN <= MAX <= 65535, e.g. 20000-29999", s)
	}
	return lo, hi, nil
}

func newAgentStatusCmd(g *Globals) *cobra.Command {
	var agentURL, dataDir, token string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the agent's groups and instances",
		Example: `  runway agent status
  runway agent status --data-dir .runway/agent --output json
  runway agent status --agent-url http://127.0.0.1:7041 --agent-token "$(cat .runway/agent/agent.token)"`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if ctx := agentOfContext(g, cmd); ctx != nil && token == "" {
				agentURL, token = ctx.AgentURL, ""
				t, err := fsutil.ReadToken(ctx.AgentTokenFile)
				if err != nil {
					return fmt.Errorf("read the agent token of the current context: %w (pass --data-dir of the agent or --agent-token)", err)
				}
				token = t
			}
			if token == "" {
				t, err := fsutil.ReadToken(filepath.Join(dataDir, agent.TokenFileName))
				if err != nil {
					return fmt.Errorf("read the agent token: %w (pass --data-dir of the agent or --agent-token)", err)
				}
				token = t
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			c := agentapi.NewClient(agentURL, token)
			groups, err := c.Groups(ctx)
			if err != nil {
				return err
			}
			if g.JSON() {
				enc := json.NewEncoder(g.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(groups)
			}
			if len(groups) == 0 {
				fmt.Fprintln(g.Stdout, "no groups")
			}
			for i, gr := range groups {
				if i > 0 {
					fmt.Fprintln(g.Stdout)
				}
				fmt.Fprintf(g.Stdout, "GROUP %s  %s/%s  release %s  version %s  %s  %d/%d healthy  limits: %s\n", gr.Name, gr.Spec.Environment,
					gr.Spec.Service, gr.Spec.ReleaseID, gr.Spec.Version, gr.State, gr.Counts["healthy"], len(gr.Instances), gr.Limits)
				tw := tabwriter.NewWriter(g.Stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "  INSTANCE\tSTATE\tPID\tADDR\tRESTARTS\tCPU\tRSS\tUPTIME\tLAST")
				for _, in := range gr.Instances {
					state := in.State
					if in.Adopted {
						state += " (adopted)"
					}
					if in.CrashLoop {
						state += " CRASH-LOOP"
					}
					uptime := "-"
					if !in.StartedAt.IsZero() && in.PID > 0 {
						uptime = time.Since(in.StartedAt).Round(time.Second).String()
					}
					last := in.LastExit
					if in.LastHealth != nil && (last == "" || in.State == "healthy") {
						last = in.LastHealth.Detail
					}
					fmt.Fprintf(tw, "  %s\t%s\t%d\t%s\t%d\t%.1f%%\t%s\t%s\t%s\n", in.ID, state, in.PID, in.Addr, in.Restarts,
						in.CPUPercent, humanBytes(in.RSSBytes), uptime, last)
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			routes, err := c.Routes(ctx)
			if err != nil {
				return err
			}
			for _, r := range routes {
				var bs []string
				for _, b := range r.Backends {
					bs = append(bs, fmt.Sprintf("%s=%d", b.Group, b.Weight))
				}
				fmt.Fprintf(g.Stdout, "\nROUTE %s  hosts: %s  backends: %s\n", r.Key(),
					orNone(strings.Join(r.Hosts, ", ")), orNone(strings.Join(bs, ", ")))
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&agentURL, "agent-url", envOr("RUNWAY_AGENT_URL", "http://127.0.0.1:7041"), "agent API URL (env RUNWAY_AGENT_URL)")
	f.StringVar(&dataDir, "data-dir", defaultAgentDir(), "the agent's data dir, to read its token (env RUNWAY_AGENT_DIR)")
	f.StringVar(&token, "agent-token", os.Getenv("RUNWAY_AGENT_TOKEN"), "agent API token (default: read DATA_DIR/agent.token; env RUNWAY_AGENT_TOKEN)")
	return cmd
}

func newAgentCACmd(g *Globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "ca",
		Short: "Print the path of the local certificate authority's certificate, to trust it",
		Long: `The agent's proxy serves HTTPS with certificates issued on demand by a local
certificate authority it creates once in DATA_DIR/ca. Trust its certificate to
reach services over https without warnings.`,
		Example: `  runway agent ca
  curl --cacert "$(runway agent ca)" https://hello.development.localhost:8443/
  sudo cp "$(runway agent ca)" /usr/local/share/ca-certificates/runway.crt && sudo update-ca-certificates`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := filepath.Join(dataDir, "ca", localca.CertFile)
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no CA certificate at %s: start the agent once with --data-dir %s to create it", path, dataDir)
			}
			abs, err := filepath.Abs(path)
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, map[string]string{"path": abs})
			}
			fmt.Fprintln(g.Stdout, abs)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", defaultAgentDir(), "the agent's data dir (env RUNWAY_AGENT_DIR)")
	return cmd
}

// agentOfContext is the current context's agent (recorded by runway up),
// unless the command names an agent itself.
func agentOfContext(g *Globals, cmd *cobra.Command) *Context {
	f := cmd.Flags()
	if f.Changed("agent-url") || f.Changed("data-dir") || os.Getenv("RUNWAY_AGENT_URL") != "" || os.Getenv("RUNWAY_AGENT_DIR") != "" {
		return nil
	}
	cfg, _, err := LoadCLIConfig()
	if err != nil {
		return nil
	}
	name := g.Context
	if name == "" {
		name = cfg.Current
	}
	if c := cfg.Contexts[name]; c != nil && c.AgentURL != "" && c.AgentTokenFile != "" {
		return c
	}
	return nil
}

// noLimitIfZero and noCapIfZero map a flag's 0 ("no limit") to the proxy
// option's negative (its 0 is the default).
func noLimitIfZero(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

func noCapIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
