package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/server"
)

func init() { register(newServerCmd) }

func newServerCmd(g *Globals) *cobra.Command {
	var dataDir, listen, agentURL, agentTokenFile, proxyHTTP, logLevel string
	var tlsCert, tlsKey, tlsLocalCA string
	var insecureListen bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API, release engine and drivers",
		Long: `Run the Runway server: the /v1 API, the durable release engine and the local
driver, which talks to the agent on this machine. State is a SQLite file in
DATA_DIR; on first start it creates user admin (global_admin) and writes its
token to DATA_DIR/admin.token (0600). On an address other than loopback it
serves only https (--tls-cert/--tls-key or --tls-local-ca) unless
--insecure-listen.
Killing the server (even with -9, mid-release) drops no request: the agent
keeps serving, and the next server resumes every unfinished release.`,
		Example: `  runway server --data-dir .runway/server
  runway server --listen 0.0.0.0:7040 --tls-cert api.crt --tls-key api.key
  runway server --data-dir /var/lib/runway/server --agent-url http://127.0.0.1:7041`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			var level slog.Level
			if err := level.UnmarshalText([]byte(logLevel)); err != nil {
				return UsageErrorf("--log-level %q: want debug, info, warn or error", logLevel)
			}
			if agentTokenFile == "" {
				agentTokenFile = filepath.Join(dataDir, "..", "agent", "agent.token")
			}
			logger := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			s, err := server.Open(ctx, server.Options{DataDir: dataDir, Listen: listen, AgentURL: agentURL,
				AgentTokenFile: agentTokenFile, ProxyHTTP: proxyHTTP, Logger: logger,
				TLSCert: tlsCert, TLSKey: tlsKey, TLSLocalCA: tlsLocalCA, InsecureListen: insecureListen})
			if err != nil {
				return err
			}
			scheme := "http"
			if tlsCert != "" || tlsLocalCA != "" {
				scheme = "https"
			}
			fmt.Fprintf(g.Stderr, "runway server %s listening on %s://%s (data dir %s, admin token in %s)\n",
				Version, scheme, s.Addr(), dataDir, filepath.Join(dataDir, server.AdminTokenFile))
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
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate of the API (with --tls-key): serve https")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&tlsLocalCA, "tls-local-ca", "", "serve https with certificates from the local CA in this directory (such as .runway/agent/ca)")
	f.BoolVar(&insecureListen, "insecure-listen", false, "allow plain HTTP on a non-loopback --listen (only behind something that encrypts)")
	return cmd
}
