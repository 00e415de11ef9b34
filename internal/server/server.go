// Package server wires `runway server`: the SQLite store, the release
// engine, the local driver (through the agent API) and the /v1 HTTP API.
package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/dirlock"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httplimit"
	"github.com/runwayhq/runway/internal/store"
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
	// AgentTimeout bounds each call to the agent (agent.DefaultCallTimeout
	// when 0; calls that drain get the drain on top).
	AgentTimeout time.Duration
	// HTTP bounds the API's clients; the zero value is httplimit.Default.
	HTTP httplimit.Limits
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
	agent  *agent.Client
	drv    *local.Driver
	lock   *dirlock.Lock
}

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
	token, err := adminToken(filepath.Join(opts.DataDir, AdminTokenFile))
	if err != nil {
		return nil, err
	}
	agentToken, err := os.ReadFile(opts.AgentTokenFile)
	if err != nil {
		return nil, fmt.Errorf("read the agent's token %s: %w (start `runway agent` first, or pass --agent-token-file)", opts.AgentTokenFile, unwrap(err))
	}
	ac := agent.NewClient(opts.AgentURL, strings.TrimSpace(string(agentToken)))
	if opts.AgentTimeout > 0 {
		ac.Timeout = opts.AgentTimeout
	}
	dbPath := filepath.Join(opts.DataDir, DatabaseFile)
	if err := store.CheckFiles(dbPath); err != nil {
		return nil, withRecovery(err, opts.DataDir)
	}
	if store.IsNew(dbPath) {
		if err := refuseLostHistory(ctx, ac, opts.DataDir, opts.AgentURL, "is new (missing or empty)"); err != nil {
			return nil, err
		}
	}
	st, err := store.OpenSQLite(ctx, dbPath, store.Options{})
	if err != nil {
		return nil, withRecovery(err, opts.DataDir)
	}
	// SQLite creates a new database and its -wal and -shm files 0644.
	if err := fsutil.Private(opts.DataDir); err != nil {
		st.Close()
		return nil, fmt.Errorf("make data dir %s private: %w", opts.DataDir, err)
	}
	if empty, err := emptyHistory(ctx, st); err != nil || empty {
		if err == nil {
			err = refuseLostHistory(ctx, ac, opts.DataDir, opts.AgentURL, "holds no release and no record of the agent")
		}
		if err != nil {
			st.Close()
			return nil, err
		}
	}
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
	drv.Fencing(st, func(ref engine.ServiceRef) string { return ResyncHint(opts.DataDir, ref) })
	eo := opts.Engine
	eo.Logger = opts.Logger
	if eo.TestFault == nil {
		fault, err := testFault(os.Getenv(TestFaultEnv))
		if err != nil {
			st.Close()
			return nil, err
		}
		eo.TestFault = fault
	}
	// The registry of targets: this server runs the local target (through
	// the agent); releases to environments of other targets are refused.
	drivers := engine.Drivers{"local": drv}
	eng := engine.New(st, drivers, eo)
	b := &backend{st: st, eng: eng, drivers: drivers, limits: TargetLimits(), log: opts.Logger}
	h := api.New(api.Options{Backend: b, AdminTokenHash: api.HashToken(token), Logger: opts.Logger})
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w (is another server running? choose --listen)", opts.Listen, err)
	}
	if opts.HTTP == (httplimit.Limits{}) {
		opts.HTTP = httplimit.Default
	}
	s := &Server{opts: opts, store: st, engine: eng, ln: ln, agent: ac, drv: drv, http: opts.HTTP.Server(h)}
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
	s.opts.Logger.Info("runway server listening", "addr", s.Addr(), "data_dir", s.opts.DataDir)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = s.http.Shutdown(shutdown)
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

// adminToken reads the admin token, creating it (0600) on first start.
func adminToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		tok := strings.TrimSpace(string(b))
		if len(tok) < 16 {
			return "", fmt.Errorf("admin token %s is too short; delete it to have a new one made", path)
		}
		return tok, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("read admin token: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := "rwy_" + hex.EncodeToString(raw)
	if err := fsutil.WriteFileAtomic(path, []byte(tok+"\n"), fsutil.FileMode); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

func unwrap(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
