// Package server wires `runway server`: the SQLite store, the release
// engine, the local driver (through the agent API) and the /v1 HTTP API.
package server

import (
	k8sclient "k8s.io/client-go/kubernetes"

	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/audit"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/dirlock"
	"github.com/runwayhq/runway/internal/driver/docker"
	"github.com/runwayhq/runway/internal/driver/ecs"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/localca"
	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// Options configure a server.
type Options struct {
	DataDir        string
	Listen         string
	AgentURL       string
	AgentTokenFile string
	// ProxyHTTP is the agent proxy's HTTP address (PREVIEW_URL of verify tasks).
	ProxyHTTP string
	Logger    *slog.Logger
	// Engine tunes the release engine (tests shorten its intervals).
	Engine engine.Options
	// AgentTimeout bounds each call to the agent (agentapi.DefaultCallTimeout
	// when 0; calls that drain get the drain on top).
	AgentTimeout time.Duration
	// HTTP bounds the API's clients; the zero value is httplimit.Default.
	HTTP httplimit.Limits
	// TLSCert and TLSKey are PEM files of the API's certificate; TLSLocalCA
	// is instead a local CA's directory (such as the agent's DATA_DIR/ca)
	// that issues it. Without either the API speaks plain HTTP, which only a
	// loopback Listen or InsecureListen allows: tokens cross the network.
	TLSCert, TLSKey string
	TLSLocalCA      string
	InsecureListen  bool
	// Now is the API's clock (replay window, token expiry); time.Now by default.
	Now func() time.Time
	// MasterKey is the master key of the secrets (base64); empty: the
	// RUNWAY_MASTER_KEY variable, else DATA_DIR/master.key.
	MasterKey string
	// WatchInterval: DefaultWatchInterval when 0; AlarmInterval:
	// DefaultAlarmInterval when 0.
	WatchInterval, AlarmInterval time.Duration
	// Secrets gives notify channels their signing keys; the secret store
	// (VaultSecrets) when nil.
	Secrets SecretSource
	// Docker is the container engine of target docker: its tasks run there
	// and its images are checked there, its instances run on the agent's
	// (the same engine: the agent runs on the engine's host). Nil: the
	// server runs no docker target, and releases to docker environments
	// are refused (NoDriver).
	Docker *container.Engine
	// DashboardIdle ends a dashboard session idle that long
	// (dashboard.DefaultIdleTimeout when 0).
	DashboardIdle time.Duration
	// Kubernetes is the cluster of target kubernetes (both traffic modes:
	// drivers "kubernetes" and "kubernetes/service"). Nil: releases to
	// kubernetes environments are refused (NoDriver).
	Kubernetes k8sclient.Interface
	// KubernetesKubeconfigs are the kubeconfig files an environment's
	// kubernetes.kubeconfig may name (the first is Kubernetes' own, the
	// server's --kubeconfig flags); KubernetesContext is Kubernetes'
	// context in the first ("": its current one). An environment's
	// (kubeconfig, context) selects the cluster of its releases
	// (k8sdriver.Clusters).
	KubernetesKubeconfigs []string
	KubernetesContext     string
	// KubernetesProxyImage is Runway's image: with it, traffic "runway"
	// creates each namespace's in-cluster proxy with its first routes.
	KubernetesProxyImage string
	// AWS configures target aws (environments and their Terraform outputs,
	// credentials the SDK's own way); nil: releases to aws environments are
	// refused (NoDriver).
	AWS *ecs.Options
	// Store is where state lives: empty for SQLite in DATA_DIR/runway.db,
	// or a postgres:// URL of a database several servers share (replica.go).
	Store string
	// Postgres tunes the PostgreSQL store (pool, statement timeout).
	Postgres store.PostgresOptions
	// Replica names this server among those sharing a PostgreSQL store
	// (default: host name and listen address); ClaimTTL is how long its
	// claims of releases and of the schedulers hold unless renewed (15 s).
	Replica  string
	ClaimTTL time.Duration
}

// AdminTokenFile is the name of the admin token file in the data dir.
const AdminTokenFile = "admin.token"

// DatabaseFile is the name of the SQLite database in the data dir.
const DatabaseFile = "runway.db"

// Server is a running control plane.
type Server struct {
	opts   Options
	store  *store.SQLite
	engine *engine.Engine
	http   *http.Server
	ln     net.Listener
	agent  *agentapi.Client
	drv    *local.Driver
	lock   *dirlock.Lock
	// backend serves the API; its event watcher runs beside it.
	backend *backend
	metrics *metrics
	// replica is this server's name when it shares a PostgreSQL store.
	replica string
}

// DefaultWatchInterval is how often the server looks at every live
// service's instances to record their starts, exits and health changes as
// events (Options.WatchInterval, --watch-interval).
const DefaultWatchInterval = 2 * time.Second

// Open prepares the data dir, store, engine and API, and binds the listener.
func Open(ctx context.Context, opts Options) (*Server, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	// Private whatever existed: runway.db and the tokens must not be
	// readable by other users because the directory was made with mode 0755.
	if err := fsutil.Private(opts.DataDir); err != nil {
		return nil, fmt.Errorf("create data dir %s: %w (choose a writable --data-dir)", opts.DataDir, err)
	}
	// Two servers on one store would both drive the same releases.
	lock, err := dirlock.Acquire(opts.DataDir, "runway server")
	if err != nil {
		return nil, err
	}
	s, err := open(ctx, opts)
	if err != nil {
		lock.Release()
		return nil, err
	}
	s.lock = lock
	return s, nil
}

func open(ctx context.Context, opts Options) (*Server, error) {
	tlsConf, err := listenTLS(opts)
	if err != nil {
		return nil, err
	}
	agentToken, err := fsutil.ReadToken(opts.AgentTokenFile)
	// A server for aws environments alone needs no agent: without its token
	// file it runs no local target, and says so to a release that needs it.
	noAgent := err != nil && errors.Is(err, fs.ErrNotExist) && opts.AWS != nil && opts.Docker == nil
	if err != nil && !noAgent {
		return nil, fmt.Errorf("read the agent's token %s: %w (start `runway agent` first, or pass --agent-token-file)", opts.AgentTokenFile, unwrap(err))
	}
	if noAgent {
		opts.Logger.Info("no agent: the agent's token file is missing, so this server runs target aws only; releases to local environments are refused until an agent runs", "agent_token_file", opts.AgentTokenFile)
	}
	ac := agentapi.NewClient(opts.AgentURL, agentToken)
	if opts.AgentTimeout > 0 {
		ac.Timeout = opts.AgentTimeout
	}
	st, err := openStore(ctx, ac, opts)
	if err != nil {
		return nil, err
	}
	// SQLite creates a new database and its -wal and -shm files 0644.
	if err := fsutil.Private(opts.DataDir); err != nil {
		st.Close()
		return nil, fmt.Errorf("make data dir %s private: %w", opts.DataDir, err)
	}
	if empty, err := emptyHistory(ctx, st); err != nil || empty {
		if err == nil {
			if st.Dialect() == "postgres" {
				err = refuseEmptyPostgres(ctx, ac, opts)
			} else {
				err = refuseLostHistory(ctx, ac, opts.DataDir, opts.AgentURL, "holds no release and no record of the agent")
			}
		}
		if err != nil {
			st.Close()
			return nil, err
		}
	}
	tokenFile := filepath.Join(opts.DataDir, AdminTokenFile)
	created, err := auth.Bootstrap(ctx, st, tokenFile, time.Now())
	if err != nil {
		st.Close()
		return nil, err
	}
	if created {
		// The path, never the token.
		opts.Logger.Info("created user admin (global_admin); its token is in the admin token file", "path", tokenFile)
	}
	vault, err := openVault(ctx, st, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	opts.Logger.Info("secrets sealed under master key", "key_id", vault.KeyID())
	specOf := func(ctx context.Context, release string) (*config.Service, error) {
		r, err := st.GetRelease(ctx, release)
		if err != nil {
			return nil, err
		}
		spec, err := engine.DecodeSpec(r.Spec)
		if err != nil {
			return nil, err
		}
		return &spec.Service, nil
	}
	drv := local.New(ac, filepath.Join(opts.DataDir, "tasks"), opts.ProxyHTTP, specOf, opts.Logger)
	drv.Fencing(st, func(ref target.ServiceRef) string { return ResyncHint(opts.DataDir, ref) })
	met := newMetrics(st)
	eo := opts.Engine
	eo.Logger = opts.Logger
	replica := ""
	if st.Dialect() == "postgres" {
		replica = replicaName(opts)
		eo.Replica, eo.ClaimTTL = replica, opts.ClaimTTL
	}
	if eo.Observer == nil {
		eo.Observer = met
	}
	if eo.TestFault == nil {
		fault, err := testFault(os.Getenv(TestFaultEnv))
		if err != nil {
			st.Close()
			return nil, err
		}
		eo.TestFault = fault
	}
	// The registry of targets: this server runs the local target (through
	// the agent) and, given an engine, target docker (the agent with
	// containers); releases to environments of other targets are refused.
	drivers := engine.Drivers{"local": drv}
	if noAgent {
		delete(drivers, "local")
	}
	var ld *local.Driver
	if opts.Docker != nil {
		// Its own local driver: the agent's protocol with container specs.
		ld = local.New(ac, filepath.Join(opts.DataDir, "tasks"), opts.ProxyHTTP, specOf, opts.Logger)
		ld.Fencing(st, func(ref target.ServiceRef) string { return ResyncHint(opts.DataDir, ref) })
		drivers["docker"] = docker.New(ld, opts.Docker, filepath.Join(opts.DataDir, "container-tasks"), opts.ProxyHTTP, opts.Logger)
	}
	var b *backend
	var kube *k8sdriver.Clusters
	if opts.Kubernetes != nil {
		kube = k8sdriver.NewClusters(opts.Kubernetes, opts.KubernetesKubeconfigs, opts.KubernetesContext)
		for _, mode := range []string{config.TrafficRunway, config.TrafficService} {
			kd, err := k8sdriver.New(k8sdriver.Options{Client: opts.Kubernetes, Traffic: mode, Logger: opts.Logger, SpecOf: specOf,
				ClientFor:  func(ref target.ServiceRef) (k8sclient.Interface, error) { return b.kubernetesClient(ref) },
				Namespace:  func(ref target.ServiceRef) string { return b.kubernetesNamespace(ref) },
				ProxyImage: opts.KubernetesProxyImage, Domain: func(ref target.ServiceRef) string { return b.projectDomain(ref) },
				Secrets: func(ctx context.Context, release string) (map[string]string, error) {
					return b.releaseSecrets(ctx, release)
				}})
			if err != nil {
				st.Close()
				return nil, err
			}
			drivers[k8sdriver.TargetKind(mode)] = kd
		}
	}
	if opts.AWS != nil {
		ao := *opts.AWS
		ao.Log = opts.Logger
		ao.Secrets = func(ctx context.Context, release string) ([]ecs.Secret, error) { return b.awsSecrets(ctx, release) }
		drivers["aws"] = ecs.New(ao)
	}
	eng := engine.New(st, drivers, eo)
	streams, endStreams := context.WithCancel(context.Background())
	b = &backend{st: st, eng: eng, drivers: drivers, limits: TargetLimits(), log: opts.Logger, secrets: vault, waiting: eng.Waiting, streams: streams, kube: kube}
	if noAgent {
		b.noAgent = opts.AgentTokenFile
	}
	drv.Secrets(b.releaseSecrets)
	if ld != nil {
		ld.Secrets(b.releaseSecrets)
		host, src := opts.Docker.Host()
		b.dockerHost, b.dockerSource = host, string(src)
	}
	auditLog := audit.New(st, filepath.Join(opts.DataDir, audit.HeadFile))
	if replica != "" {
		auditLog = audit.NewShared(st, filepath.Join(opts.DataDir, audit.HeadFile))
	}
	id := newIdentity(st, auditLog, opts.Now)
	h := api.New(api.Options{Backend: b, Identity: id, Secrets: &secretService{b: b, vault: vault}, Logger: opts.Logger, Now: opts.Now,
		Metrics: met.handler(), Observe: met.observeAPI, Replica: replica,
		StoreHealth: func(ctx context.Context) (string, error) { return st.Dialect(), st.Ping(ctx) }})
	root, err := withDashboard(h, st, opts)
	if err != nil {
		endStreams()
		st.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		endStreams()
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w (is another server running? choose --listen)", opts.Listen, err)
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	if opts.HTTP == (httplimit.Limits{}) {
		opts.HTTP = httplimit.Default
	}
	if noAgent {
		drv = nil
	}
	s := &Server{opts: opts, store: st, engine: eng, ln: ln, agent: ac, drv: drv, http: opts.HTTP.Server(root), backend: b, metrics: met, replica: replica}
	s.http.RegisterOnShutdown(endStreams)
	return s, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run resumes unfinished releases and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	s.logStoreBehind(ctx)
	if err := s.engine.Start(ctx); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- s.http.Serve(s.ln) }()
	supplyCtx, stopSupply := context.WithCancel(ctx)
	supplied := make(chan struct{})
	go func() {
		defer close(supplied)
		s.supplySecrets(supplyCtx)
	}()
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	schedulers := func(wctx context.Context) {
		var wg sync.WaitGroup
		wg.Add(1)
		interval := s.opts.WatchInterval
		if interval <= 0 {
			interval = DefaultWatchInterval
		}
		go (&watcher{b: s.backend, interval: interval, seen: map[target.ServiceRef]map[string]groupSeen{}}).run(wctx, &wg)
		alarmEvery := s.opts.AlarmInterval
		if alarmEvery <= 0 {
			alarmEvery = DefaultAlarmInterval
		}
		secrets := s.opts.Secrets
		if secrets == nil {
			secrets = VaultSecrets{Vault: s.backend.secrets}
		}
		wg.Add(2)
		go (&evaluator{b: s.backend, interval: alarmEvery, now: time.Now, gauge: s.metrics.alarmStates}).run(wctx, &wg)
		go (&notifier{b: s.backend, secrets: secrets, poll: 500 * time.Millisecond, now: time.Now, notified: s.metrics.notified,
			client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}).run(wctx, &wg)
		wg.Wait()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if s.replica == "" {
			schedulers(wctx)
			return
		}
		// Several servers: the schedulers run on one replica at a time.
		(&leadership{st: s.store, owner: s.replica, ttl: s.claimTTL(), log: s.opts.Logger}).run(wctx, schedulers)
	}()
	s.opts.Logger.Info("runway server listening", "addr", s.Addr(), "data_dir", s.opts.DataDir, "store", s.store.Dialect(), "replica", s.replica)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Followed streams (logs, events) end with their requests' contexts.
	_ = s.http.Shutdown(shutdown)
	stopSupply()
	<-supplied
	stopWatch()
	wg.Wait()
	// Releases stop at their current step, persisted; the next server resumes them.
	s.engine.Close()
	if cerr := s.store.Close(); err == nil {
		err = cerr
	}
	s.lock.Release()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// openVault loads the master key (Options.MasterKey, else
// RUNWAY_MASTER_KEY, else DATA_DIR/master.key, made on first start) and
// refuses one that does not open the stored secrets, changing nothing.
func openVault(ctx context.Context, st *store.SQLite, opts Options) (*secrets.Vault, error) {
	ids, err := st.SecretKeyIDs(ctx)
	if err != nil {
		return nil, err
	}
	key := opts.MasterKey
	if key == "" {
		key = os.Getenv(secrets.MasterKeyEnv)
	}
	kr, err := secrets.LoadKeyring(opts.DataDir, key, ids)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return secrets.OpenVault(ctx, st, kr, nil)
}

// SecretsSupplyInterval is how often the server looks for groups of the
// agent that lack their secrets (the agent restarted) and sends them.
const SecretsSupplyInterval = time.Second

// supplySecrets gives the agent's groups their secrets again after an
// agent restart, until ctx ends.
func (s *Server) supplySecrets(ctx context.Context) {
	if s.drv == nil {
		return // no agent
	}
	t := time.NewTicker(SecretsSupplyInterval)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := s.drv.SupplySecrets(ctx)
		if err != nil && !failing && ctx.Err() == nil {
			s.opts.Logger.Warn("giving the agent's groups their secrets failed; retrying", "err", err)
		}
		failing = err != nil
	}
}

// listenTLS returns the API's TLS configuration, or nil for plain HTTP,
// which it refuses on an address other than loopback unless InsecureListen.
func listenTLS(opts Options) (*tls.Config, error) {
	switch {
	case (opts.TLSCert == "") != (opts.TLSKey == ""):
		return nil, errors.New("--tls-cert and --tls-key go together: give both files, or --tls-local-ca DIR")
	case opts.TLSCert != "" && opts.TLSLocalCA != "":
		return nil, errors.New("give --tls-cert/--tls-key or --tls-local-ca, not both")
	case opts.TLSCert != "":
		cert, err := tls.LoadX509KeyPair(opts.TLSCert, opts.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", opts.TLSCert, opts.TLSKey, err)
		}
		return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
	case opts.TLSLocalCA != "":
		conf, err := localca.TLSConfig(opts.TLSLocalCA, nil)
		if err != nil {
			return nil, fmt.Errorf("--tls-local-ca %s: %w", opts.TLSLocalCA, err)
		}
		return conf, nil
	}
	if opts.InsecureListen || isLoopback(opts.Listen) {
		return nil, nil
	}
	return nil, fmt.Errorf("--listen %s is not a loopback address: API tokens would cross the network in clear. Give --tls-cert and --tls-key (or --tls-local-ca DIR), or pass --insecure-listen if something else encrypts the traffic", opts.Listen)
}

// isLoopback reports whether a listen address binds only loopback.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
