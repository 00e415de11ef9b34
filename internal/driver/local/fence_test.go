package local

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// lossyStore is the real store, except that a record can be lost, as when
// the server dies between the agent's answer and writing it down.
type lossyStore struct {
	*store.SQLite
	lose atomic.Bool
}

func (s *lossyStore) RecordAgentGeneration(ctx context.Context, env, svc string, g int64) error {
	if s.lose.Swap(false) {
		return errors.New("the server died before recording the answer")
	}
	return s.SQLite.RecordAgentGeneration(ctx, env, svc, g)
}

// TestFencing runs the driver against a real agent and a real store: a
// server that lost the record of the agent's last answer acts on; a store
// set back below what it already sent is refused on every mutating call
// with an ErrStoreBehind that names the recovery, before anything changes;
// adopting the agent's generation (what resync does) lets it act again.
func TestFencing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenSQLite(ctx, filepath.Join(dir, "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// Groups of 0 instances: no process starts and no instance port is
	// taken (this package has no slice of the port space, docs/testing.md).
	a, err := agent.New(agent.Options{DataDir: filepath.Join(dir, "agent"), Listen: "127.0.0.1:0", StopInstances: true})
	if err != nil {
		t.Fatal(err)
	}
	actx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(actx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	specOf := func(context.Context, string) (*config.Service, error) { return &config.Service{Name: "web"}, nil }
	d := New(agentapi.NewClient(a.URL(), a.Token()), filepath.Join(dir, "tasks"), "", specOf, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ls := &lossyStore{SQLite: st}
	d.Fencing(ls, func(ref target.ServiceRef) string {
		return "run `runway server resync " + ref.Service + " --env " + ref.Environment + "`"
	})
	ref := target.ServiceRef{Environment: "dev", Service: "web"}
	spec := &config.Service{Name: "web", Version: "1", Command: []string{"/bin/sh"}, Dir: dir}
	group := strategy.GroupName("web", "r1", agentapi.MaxGroupName)
	if err := d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: group, Release: "r1", Spec: spec, Count: 0}); err != nil {
		t.Fatal(err)
	}
	ls.lose.Store(true)
	if err := d.SetRoutes(ctx, ref, []strategy.Route{{Group: group, Weight: 100}}); err != nil {
		t.Fatal(err)
	}
	if g, _ := st.AgentGeneration(ctx, "dev", "web"); g != 1 {
		t.Fatalf("recorded generation %d, want 1 (the answer 2 was lost)", g)
	}
	// The crash case: the store holds 1, what the lost call carried.
	if err := d.ScaleGroup(ctx, ref, group, 0, 0); err != nil {
		t.Fatalf("a server that lost only the last answer was refused: %v", err)
	}
	if err := d.ScaleGroup(ctx, ref, group, 0, 0); err != nil {
		t.Fatal(err)
	}
	if g, _ := st.AgentGeneration(ctx, "dev", "web"); g != 4 {
		t.Fatalf("recorded generation %d, want 4", g)
	}
	// The rewound case: the store goes back to 2, below the 3 it sent.
	if err := st.ResetAgentGeneration(ctx, "dev", "web", 2); err != nil {
		t.Fatal(err)
	}
	msg, err := d.StoreBehind(ctx, ref)
	if err != nil || !strings.Contains(msg, "recorded agent generation 2, but a server already acted at generation 3") {
		t.Errorf("StoreBehind: %q %v", msg, err)
	}
	calls := map[string]func() error{
		"ensure": func() error {
			return d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: strategy.GroupName("web", "r2", agentapi.MaxGroupName), Release: "r2", Spec: spec, Count: 0})
		},
		"scale":   func() error { return d.ScaleGroup(ctx, ref, group, 1, 0) },
		"routes":  func() error { return d.SetRoutes(ctx, ref, nil) },
		"preview": func() error { return d.SetPreview(ctx, ref, group) },
		"delete":  func() error { return d.DeleteGroup(ctx, ref, group, 0) },
		"validate": func() error {
			return d.Validate(ctx, ref, spec)
		},
	}
	for name, call := range calls {
		err := call()
		if !errors.Is(err, target.ErrStoreBehind) || !strings.Contains(err.Error(), "runway server resync web --env dev") {
			t.Errorf("%s with a rewound store: %v, want ErrStoreBehind naming the recovery", name, err)
		}
	}
	routes, _ := d.Routes(ctx, ref)
	groups, _ := d.ListGroups(ctx, ref)
	if len(routes) != 1 || routes[0].Weight != 100 || len(groups) != 1 || groups[0].Status.Desired != 0 {
		t.Errorf("refused calls changed the agent: routes %+v, groups %+v", routes, groups)
	}
	// What resync does: adopt the agent's generation.
	h, _ := agentapi.NewClient(a.URL(), a.Token()).Health(ctx)
	if err := st.ResetAgentGeneration(ctx, "dev", "web", h.Generations[0].Generation); err != nil {
		t.Fatal(err)
	}
	if err := d.DeleteGroup(ctx, ref, group, 0); err != nil {
		t.Errorf("after adopting the agent's generation: %v", err)
	}
}
