package cli

import (
	k8sclient "k8s.io/client-go/kubernetes"

	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/dashboard"
	"github.com/runwayhq/runway/internal/driver/ecs"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/server"
	"github.com/runwayhq/runway/internal/store"
)

func newServerCmd(g *Globals) *cobra.Command {
	var dataDir, listen, agentURL, agentTokenFile, proxyHTTP, logLevel string
	var tlsCert, tlsKey, tlsLocalCA, dockerHost, awsOutputs string
	var kubeContext, kubeProxyImage string
	var kubeconfigs []string
	var kubernetesOn bool
	var insecureListen bool
	var agentTimeout, watchInterval, alarmInterval, dashboardIdle time.Duration
	limits := httplimit.Default
	var storeURL, replica string
	var claimTTL time.Duration
	var pg store.PostgresOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane: API, release engine and drivers",
		Long: `Run the Runway server: the /v1 API, the durable release engine and the local
driver, which talks to the agent on this machine. State is a SQLite file in
DATA_DIR, or with --store (RUNWAY_STORE) a PostgreSQL database that several
servers share (docs/operations.md, "Running several servers"); on first start it creates user admin (global_admin) and writes its
token to DATA_DIR/admin.token (0600). On an address other than loopback it
serves only https (--tls-cert/--tls-key or --tls-local-ca) unless
--insecure-listen.
Killing the server (even with -9, mid-release) drops no request: the agent
keeps serving, and the next server resumes every unfinished release.
Secrets are sealed under the master key of RUNWAY_MASTER_KEY (base64 of 32
bytes) or else DATA_DIR/master.key (0600, made on first start); a key that
does not open the stored secrets stops the server at start. Back the key up
apart from the database (runway server backup copies only the database).`,
		Example: `  runway server --data-dir .runway/server
  runway server --listen 0.0.0.0:7040 --tls-cert api.crt --tls-key api.key
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
			if alarmInterval <= 0 {
				return UsageErrorf("--alarm-interval is %s; give a positive duration such as 10s", alarmInterval)
			}
			if watchInterval <= 0 {
				return UsageErrorf("--watch-interval is %s; give a positive duration such as 2s", watchInterval)
			}
			if agentTimeout <= 0 {
				return UsageErrorf("--agent-timeout is %s; give a positive duration such as 10s", agentTimeout)
			}
			if agentTokenFile == "" {
				agentTokenFile = filepath.Join(dataDir, "..", "agent", "agent.token")
			}
			if storeURL == "" {
				storeURL = os.Getenv("RUNWAY_STORE")
			}
			if storeURL != "" && !store.IsPostgresURL(storeURL) {
				return UsageErrorf("--store %s: want a postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE), or no --store for SQLite in the data dir", store.RedactURL(storeURL))
			}
			if pg.StatementTimeout == 0 {
				pg.StatementTimeout = -1 // 0 on the command line: the database's own default
			}
			if pg.IdleInTransactionTimeout == 0 {
				pg.IdleInTransactionTimeout = -1
			}
			if claimTTL < 3*time.Second {
				return UsageErrorf("--claim-ttl is %s; give at least 3s (claims are renewed every third of it)", claimTTL)
			}
			logger := slog.New(slog.NewTextHandler(g.Stderr, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			eng, err := connectEngine(ctx, dockerHost, logger)
			if err != nil {
				return err
			}
			if eng != nil {
				defer eng.Close()
			}
			var kube k8sclient.Interface
			if kubernetesOn || len(kubeconfigs) > 0 || kubeContext != "" {
				first := ""
				if len(kubeconfigs) > 0 {
					first = kubeconfigs[0]
				}
				if kube, _, err = k8sdriver.Client(first, kubeContext); err != nil {
					return err
				}
			}
			var awsOpts *ecs.Options
			if awsOutputs != "" {
				envs, err := ecs.LoadEnvironments(awsOutputs)
				if err != nil {
					return err
				}
				awsOpts = &ecs.Options{Environments: envs}
			}
			s, err := server.Open(ctx, server.Options{DataDir: dataDir, Listen: listen, AgentURL: agentURL,
				AgentTokenFile: agentTokenFile, ProxyHTTP: proxyHTTP, Logger: logger, AgentTimeout: agentTimeout, HTTP: limits,
				TLSCert: tlsCert, TLSKey: tlsKey, TLSLocalCA: tlsLocalCA, InsecureListen: insecureListen, WatchInterval: watchInterval, AlarmInterval: alarmInterval,
				Docker: eng, DashboardIdle: dashboardIdle, Kubernetes: kube, KubernetesKubeconfigs: kubeconfigs, KubernetesContext: kubeContext, KubernetesProxyImage: kubeProxyImage, AWS: awsOpts,
				Store: storeURL, Postgres: pg, Replica: replica, ClaimTTL: claimTTL})
			if err != nil {
				return err
			}
			scheme := "http"
			if tlsCert != "" || tlsLocalCA != "" {
				scheme = "https"
			}
			fmt.Fprintf(g.Stderr, "runway server %s listening on %s://%s (data dir %s, admin token in %s)\n",
				Version, scheme, s.Addr(), dataDir, filepath.Join(dataDir, server.AdminTokenFile))
			if s.Replica() != "" {
				fmt.Fprintf(g.Stderr, "store %s, replica %s\n", store.RedactURL(storeURL), s.Replica())
			}
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", filepath.Join(DefaultDataDir, "server"), "directory of the server's database and admin token")
	f.StringVar(&listen, "listen", "127.0.0.1:7040", "address of the API")
	f.StringVar(&agentURL, "agent-url", "http://127.0.0.1:7041", "URL of the agent API (local target)")
	f.StringVar(&agentTokenFile, "agent-token-file", "", "the agent's token file (default DATA_DIR/../agent/agent.token)")
	f.StringVar(&proxyHTTP, "proxy-http", "127.0.0.1:8080", "the agent proxy's HTTP address (PREVIEW_URL of verify commands)")
	f.StringVar(&dockerHost, "docker-host", "", "address of the container engine of target docker, the agent's (default: as runway agent finds it); without one, releases to docker environments are refused")
	f.BoolVar(&kubernetesOn, "kubernetes", false, "run target kubernetes on the cluster of --kubeconfig (default: KUBECONFIG, ~/.kube/config, else in-cluster); without it, releases to kubernetes environments are refused")
	f.StringArrayVar(&kubeconfigs, "kubeconfig", nil, "kubeconfig of target kubernetes' default cluster (implies --kubernetes); repeat it to let environments name more files in their kubernetes.kubeconfig (a manifest may name no other file)")
	f.StringVar(&kubeProxyImage, "kubernetes-proxy-image", "", "Runway's image (registry/runway:VERSION): traffic \"runway\" then creates each namespace's in-cluster proxy (runway proxy --kubernetes) with its first routes; without it the operator deploys the proxy")
	f.StringVar(&kubeContext, "kube-context", "", "context of the default cluster in its kubeconfig (default: its current context; implies --kubernetes); an environment's kubernetes.context picks another")
	f.StringVar(&awsOutputs, "aws-outputs", "", "JSON file of each aws environment's Terraform outputs (docs/aws.md); without it, releases to aws environments are refused. Credentials are the AWS SDK's own (profile, SSO, environment, role)")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate of the API (with --tls-key): serve https")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&tlsLocalCA, "tls-local-ca", "", "serve https with certificates from the local CA in this directory (such as .runway/agent/ca)")
	f.BoolVar(&insecureListen, "insecure-listen", false, "allow plain HTTP on a non-loopback --listen (only behind something that encrypts)")
	f.DurationVar(&agentTimeout, "agent-timeout", agentapi.DefaultCallTimeout, "longest wait for an answer of the agent (calls that drain instances get the drain on top)")
	f.DurationVar(&watchInterval, "watch-interval", server.DefaultWatchInterval, "how often the instances of every service are looked at, to record their starts, exits and health changes as events")
	f.DurationVar(&alarmInterval, "alarm-interval", server.DefaultAlarmInterval, "how often every live service's alarms are evaluated")
	f.DurationVar(&dashboardIdle, "dashboard-idle", dashboard.DefaultIdleTimeout, "a dashboard session unused this long ends (revoked on its next request; measured to the minute)")
	f.DurationVar(&limits.Body, "body-timeout", httplimit.DefaultBody, "time a client has to send a request body to the API (0: no limit)")
	f.DurationVar(&limits.Idle, "idle-timeout", httplimit.DefaultIdle, "how long an idle keep-alive connection to the API stays open (0: no limit)")
	f.StringVar(&storeURL, "store", "", "postgres:// URL of a PostgreSQL database several servers share (default $RUNWAY_STORE, else SQLite in the data dir)")
	f.StringVar(&replica, "replica", "", "this server's name among the servers sharing --store (default HOSTNAME/LISTEN)")
	f.DurationVar(&claimTTL, "claim-ttl", 15*time.Second, "with --store: how long a replica's claim of a release (and of the schedulers) holds unless renewed; another replica takes over after it")
	f.DurationVar(&pg.IdleInTransactionTimeout, "pg-idle-in-transaction-timeout", 5*time.Second, "with --store: PostgreSQL idle_in_transaction_session_timeout of every connection (a replica paused mid-transaction loses its session, and its locks, instead of blocking the others' takeover); 0 keeps the database's")
	f.IntVar(&pg.MaxConns, "pg-max-conns", 20, "with --store: most connections this server opens to PostgreSQL")
	f.DurationVar(&pg.StatementTimeout, "pg-statement-timeout", 10*time.Second, "with --store: PostgreSQL statement_timeout of every connection (a stuck statement fails instead of holding a release); 0 keeps the database's")
	cmd.AddCommand(newServerBackupCmd(g), newServerResyncCmd(g), newServerMigrateCmd(g))
	return cmd
}

func newServerBackupCmd(g *Globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "backup FILE",
		Short: "Write a consistent copy of the server's database, also while it runs",
		Long: `Write a consistent copy of DATA_DIR/runway.db to FILE (a new file, mode 0600)
with SQLite's VACUUM INTO: one snapshot, taken while the server keeps
running and writing. The copy is checked (PRAGMA quick_check) before it is
put in place. It holds the secrets sealed, not the master key that opens
them: back DATA_DIR/master.key up too. To restore it, see docs/operations.md: stop the server, copy
FILE to DATA_DIR/runway.db, remove runway.db-wal and runway.db-shm, start
the server; services changed since the backup are then refused until
"runway server resync".`,
		Example: `  runway server backup --data-dir .runway/server backups/runway-$(date +%F).db`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := embeddedOnly("backup"); err != nil {
				return err
			}
			info, err := store.Backup(cmd.Context(), filepath.Join(dataDir, server.DatabaseFile), args[0])
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, map[string]any{"path": info.Path, "bytes": info.Bytes, "releases": info.Releases})
			}
			fmt.Fprintf(g.Stdout, "backed up %s to %s (%d bytes, %d releases)\n", filepath.Join(dataDir, server.DatabaseFile), info.Path, info.Bytes, info.Releases)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", filepath.Join(DefaultDataDir, "server"), "the server's data dir")
	return cmd
}

func newServerResyncCmd(g *Globals) *cobra.Command {
	var dataDir, env, project, agentURL, agentTokenFile string
	cmd := &cobra.Command{
		Use:   "resync [SERVICE --env ENV [--project P]]",
		Short: "Rebuild a service's records from the agent after the store went back in time",
		Long: `When the server's store is behind the agent (restored from a backup, a lost
WAL), the agent refuses the server on the services that changed since, and
releases end StoreBehind. resync makes the store agree with what runs: it
reads the service's groups and routes from the agent, ends the service's
unfinished releases (they would resume from a point the world has left),
records the releases of the agent's groups that the store lacks, and adopts
the agent's generation, so the server may act on the service again. It
changes nothing on the agent and may run while the server runs. Without
SERVICE it resyncs every service the agent knows (also to rebuild a lost
database).`,
		Example: `  runway server resync --data-dir .runway/server hello --env development
  runway server resync --data-dir .runway/server`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return UsageErrorf("%s takes at most one SERVICE, got %d (see '%s --help')", cmd.CommandPath(), len(args), cmd.CommandPath())
			}
			if (len(args) == 1) != (env != "") {
				return UsageErrorf("name SERVICE with --env ENV, or neither to resync every service")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := embeddedOnly("resync"); err != nil {
				return err
			}
			if agentTokenFile == "" {
				agentTokenFile = filepath.Join(dataDir, "..", "agent", "agent.token")
			}
			o := server.ResyncOptions{DataDir: dataDir, AgentURL: agentURL, AgentTokenFile: agentTokenFile, Project: project, Environment: env}
			if len(args) == 1 {
				o.Service = args[0]
			}
			res, err := server.Resync(cmd.Context(), o)
			if err != nil {
				return err
			}
			if g.JSON() {
				if res == nil {
					res = []server.ServiceResync{}
				}
				return writeJSON(g, res)
			}
			if len(res) == 0 {
				fmt.Fprintln(g.Stdout, "the agent knows no service: nothing to resync")
			}
			for _, r := range res {
				fmt.Fprintf(g.Stdout, "%s in %s: adopted agent generation %d (the store had %d)\n", r.Service, r.Environment, r.Generation, r.Previous)
				for _, x := range r.Groups {
					fmt.Fprintf(g.Stdout, "  group     %s\n", x)
				}
				for _, x := range r.Ended {
					fmt.Fprintf(g.Stdout, "  ended     %s\n", x)
				}
				for _, x := range r.Recorded {
					fmt.Fprintf(g.Stdout, "  recorded  %s\n", x)
				}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", filepath.Join(DefaultDataDir, "server"), "the server's data dir")
	f.StringVarP(&env, "env", "e", "", "environment of SERVICE")
	f.StringVarP(&project, "project", "p", "", "project of SERVICE (default: every project the agent runs it for)")
	f.StringVar(&agentURL, "agent-url", "http://127.0.0.1:7041", "URL of the agent API")
	f.StringVar(&agentTokenFile, "agent-token-file", "", "the agent's token file (default DATA_DIR/../agent/agent.token)")
	return cmd
}

// embeddedOnly refuses a command that works on DATA_DIR/runway.db when
// RUNWAY_STORE says the servers use PostgreSQL: it would act on a file
// they do not use.
func embeddedOnly(command string) error {
	if v := os.Getenv("RUNWAY_STORE"); v != "" {
		return UsageErrorf("runway server %s works on an embedded server's SQLite database, but RUNWAY_STORE is %s: on PostgreSQL use its own tools (pg_dump for backups; docs/operations.md, \"Running several servers\"), or unset RUNWAY_STORE", command, store.RedactURL(v))
	}
	return nil
}
