package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/server"
)

func init() { register(newServerCmd) }

func newServerCmd(g *Globals) *cobra.Command {
	var dataDir, listen, agentURL, agentTokenFile, proxyHTTP, logLevel string
	var agentTimeout time.Duration
	limits := httplimit.Default
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API, release engine and drivers",
		Long: `Run the Runway server: the /v1 API, the durable release engine and the local
driver, which talks to the agent on this machine. State is a SQLite file in
DATA_DIR; the admin token is written to DATA_DIR/admin.token on first start.
Killing the server (even with -9, mid-release) drops no request: the agent
keeps serving, and the next server resumes every unfinished release.`,
		Example: `  runway server --data-dir .runway/server
  runway server --data-dir /var/lib/runway/server --agent-url http://127.0.0.1:7041`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return UsageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			if err := limits.Validate(""); err != nil {
				return UsageErrorf("%v", err)
			}
			if agentTimeout <= 0 {
				return UsageErrorf("--agent-timeout is %s; give a positive duration such as 10s", agentTimeout)
			}
			if agentTokenFile == "" {
				agentTokenFile = filepath.Join(dataDir, "..", "agent", "agent.token")
			}
			logger := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			s, err := server.Open(ctx, server.Options{DataDir: dataDir, Listen: listen, AgentURL: agentURL,
				AgentTokenFile: agentTokenFile, ProxyHTTP: proxyHTTP, Logger: logger, AgentTimeout: agentTimeout, HTTP: limits})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.Stderr, "runway server %s listening on http://%s (data dir %s, admin token in %s)\n",
				Version, s.Addr(), dataDir, filepath.Join(dataDir, server.AdminTokenFile))
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", filepath.Join(DefaultDataDir, "server"), "directory of the server's database and admin token")
	f.StringVar(&listen, "listen", "127.0.0.1:7040", "address of the API")
	f.StringVar(&agentURL, "agent-url", "http://127.0.0.1:7041", "URL of the agent API (local target)")
	f.StringVar(&agentTokenFile, "agent-token-file", "", "the agent's token file (default DATA_DIR/../agent/agent.token)")
	f.StringVar(&proxyHTTP, "proxy-http", "127.0.0.1:8080", "the agent proxy's HTTP address (PREVIEW_URL of verify commands)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.DurationVar(&agentTimeout, "agent-timeout", agent.DefaultCallTimeout, "longest wait for an answer of the agent (calls that drain instances get the drain on top)")
	f.DurationVar(&limits.Body, "body-timeout", httplimit.DefaultBody, "time a client has to send a request body to the API (0: no limit)")
	f.DurationVar(&limits.Idle, "idle-timeout", httplimit.DefaultIdle, "how long an idle keep-alive connection to the API stays open (0: no limit)")
	return cmd
}
