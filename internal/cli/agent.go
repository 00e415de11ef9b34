package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/proxy"
)

func init() { register(newAgentCmd) }

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
		metricsListen                        string
		drainTimeout                         time.Duration
		stopInstances                        bool
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the agent: supervises service instances on this machine (local target)",
		Long: `Run the agent, the data plane of the local target: it starts, checks,
restarts and stops service instances on this machine and serves the agent
API on loopback, protected by the token it writes to DIR/agent.token.

On SIGTERM or SIGINT the agent exits and leaves the instances running; the
next agent started on the same --data-dir re-adopts them (same pids). Use
--stop-instances to stop them instead.`,
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
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			p, err := proxy.New(proxy.Options{HTTPAddr: httpAddr, HTTPSAddr: httpsAddr, CADir: filepath.Join(dataDir, "ca"),
				DrainTimeout: drainTimeout, AccessLog: access, Registerer: reg, Logger: logger})
			if err != nil {
				return err
			}
			a, err := agent.New(agent.Options{DataDir: dataDir, Listen: listen, PortMin: lo, PortMax: hi,
				StopInstances: stopInstances, Version: Version, Logger: logger, Proxy: p, Metrics: reg, MetricsListen: metricsListen})
			if err != nil {
				p.Close()
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			fmt.Fprintf(g.Stderr, "runway agent %s listening on %s (data dir %s, token in %s); proxy on http://%s and https://%s\n",
				Version, a.URL(), dataDir, filepath.Join(dataDir, agent.TokenFileName), httpAddr, httpsAddr)
			return a.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", defaultAgentDir(), "directory of the agent's state, token and logs (env RUNWAY_AGENT_DIR)")
	f.StringVar(&listen, "listen", "127.0.0.1:7041", "loopback address of the agent API")
	f.StringVar(&portRange, "port-range", "20000-29999", "ports given to instances, MIN-MAX")
	f.BoolVar(&stopInstances, "stop-instances", false, "stop every instance when the agent exits (default: leave them running)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&httpAddr, "http", proxy.DefaultHTTPAddr, "address of the proxy's HTTP listener")
	f.StringVar(&metricsListen, "metrics-listen", "", "also serve /metrics here without a token, for a Prometheus scraper (on the API's address it needs the token)")
	f.StringVar(&httpsAddr, "https", proxy.DefaultHTTPSAddr, "address of the proxy's HTTPS listener (certificates from the local CA in DATA_DIR/ca)")
	f.DurationVar(&drainTimeout, "drain-timeout", proxy.DefaultDrainTimeout, "longest wait for requests in flight on instances taken out of traffic")
	f.StringVar(&accessLog, "access-log", "", "write a JSON line per request to this file (- for stdout); off by default")
	cmd.AddCommand(newAgentStatusCmd(g))
	cmd.AddCommand(newAgentCACmd(g))
	return cmd
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
				b, err := os.ReadFile(ctx.AgentTokenFile)
				if err != nil {
					return fmt.Errorf("read the agent token of the current context: %w (pass --data-dir of the agent or --agent-token)", err)
				}
				token = strings.TrimSpace(string(b))
			}
			if token == "" {
				b, err := os.ReadFile(filepath.Join(dataDir, agent.TokenFileName))
				if err != nil {
					return fmt.Errorf("read the agent token: %w (pass --data-dir of the agent or --agent-token)", err)
				}
				token = strings.TrimSpace(string(b))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			c := agent.NewClient(agentURL, token)
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

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
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
			path := filepath.Join(dataDir, "ca", proxy.CACertFile)
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
