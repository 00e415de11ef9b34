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
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/fsutil"
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
}

// AdminTokenFile is the name of the admin token file in the data dir.
const AdminTokenFile = "admin.token"

// Server is a running control plane.
type Server struct {
	opts   Options
	store  *store.SQLite
	engine *engine.Engine
	http   *http.Server
	ln     net.Listener
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
	token, err := adminToken(filepath.Join(opts.DataDir, AdminTokenFile))
	if err != nil {
		return nil, err
	}
	agentToken, err := os.ReadFile(opts.AgentTokenFile)
	if err != nil {
		return nil, fmt.Errorf("read the agent's token %s: %w (start `runway agent` first, or pass --agent-token-file)", opts.AgentTokenFile, unwrap(err))
	}
	st, err := store.OpenSQLite(ctx, filepath.Join(opts.DataDir, "runway.db"), store.Options{})
	if err != nil {
		return nil, err
	}
	// SQLite creates a new database and its -wal and -shm files 0644.
	if err := fsutil.Private(opts.DataDir); err != nil {
		st.Close()
		return nil, fmt.Errorf("make data dir %s private: %w", opts.DataDir, err)
	}
	ac := agent.NewClient(opts.AgentURL, strings.TrimSpace(string(agentToken)))
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
	eng := engine.New(st, drv, eo)
	b := &backend{st: st, eng: eng, drv: drv}
	h := api.New(api.Options{Backend: b, AdminTokenHash: api.HashToken(token), Logger: opts.Logger})
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("listen on %s: %w (is another server running? choose --listen)", opts.Listen, err)
	}
	s := &Server{opts: opts, store: st, engine: eng, ln: ln,
		http: &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}}
	return s, nil
}

// Addr is the address the API listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run resumes unfinished releases and serves until ctx ends.
func (s *Server) Run(ctx context.Context) error {
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
