package server

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// TestResyncRecords runs Resync against a real in-process agent and a real
// store: it refuses while a release of the service holds a live lease
// (changing nothing), and otherwise ends the unfinished release, frees its
// lock, records the release of the running group the store lacks, and
// adopts the agent's generation.
func TestResyncRecords(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// A group of 0 instances: no process starts, no instance port is taken.
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
	ac := agentapi.NewClient(a.URL(), a.Token())
	// The agent runs release r2 of dev/web (created by a server whose
	// record of it is lost), routed at 100 %.
	spec := agentapi.GroupSpec{Name: "web-r2", Service: "web", Environment: "dev", ReleaseID: "R2", Version: "2.0.0",
		Command: []string{"/bin/sh"}, WorkDir: dir, Instances: 0}
	if _, _, err := ac.CreateGroup(ctx, spec); err != nil {
		t.Fatal(err)
	}
	if _, err := ac.PutRoute(ctx, agentapi.Route{Environment: "dev", Service: "web", Backends: []agentapi.Backend{{Group: "web-r2", Weight: 100}}}); err != nil {
		t.Fatal(err)
	}

	sdir := filepath.Join(dir, "server")
	st, err := store.OpenSQLite(ctx, filepath.Join(sdir, DatabaseFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The store's view: release R1 half done, holding the lock.
	r1 := &store.Release{ID: "R1", Environment: "dev", Service: "web", Version: "1.0.0", Spec: []byte("{}"),
		Progress: store.Progress{State: string(engine.StateDeploy), Step: 2}}
	if err := st.CreateRelease(ctx, r1); err != nil {
		t.Fatal(err)
	}
	ref := target.ServiceRef{Environment: "dev", Service: "web"}
	if _, err := st.AcquireLock(ctx, engine.LockKey(ref), "R1", time.Hour); err != nil {
		t.Fatal(err)
	}
	st.Close()
	o := ResyncOptions{DataDir: sdir, AgentURL: a.URL(), AgentTokenFile: filepath.Join(dir, "agent", agent.TokenFileName), Environment: "dev", Service: "web"}

	if _, err := Resync(ctx, o); err == nil || !strings.Contains(err.Error(), "release R1 is running") {
		t.Fatalf("resync with a live lease: %v, want refused", err)
	}
	st, err = store.OpenSQLite(ctx, filepath.Join(sdir, DatabaseFile), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if r, _ := st.GetRelease(ctx, "R1"); r.Done {
		t.Errorf("a refused resync ended R1: %+v", r.Progress)
	}
	if g, _ := st.AgentGeneration(ctx, "dev", "web"); g != 0 {
		t.Errorf("a refused resync recorded generation %d", g)
	}

	// The server is gone and its lease expired (here: released by hand).
	if err := st.ReleaseLock(ctx, engine.LockKey(ref), "R1"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AcquireLock(ctx, engine.LockKey(ref), "R1", time.Nanosecond); err != nil {
		t.Fatal(err)
	}
	res, err := Resync(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Generation != 2 || len(res[0].Ended) != 1 || len(res[0].Recorded) != 1 {
		t.Fatalf("resync result %+v", res)
	}
	r, _ := st.GetRelease(ctx, "R1")
	if !r.Done || r.State != string(engine.StateFailureDirty) || r.ErrorKind != "StoreBehind" || !strings.Contains(r.Error, "Deploy step 2") {
		t.Errorf("R1 after resync: %s %s %q", r.State, r.ErrorKind, r.Error)
	}
	if _, err := st.GetLock(ctx, engine.LockKey(ref)); err == nil {
		t.Error("R1's lock is still there")
	}
	r2, err := st.GetRelease(ctx, "R2")
	if err != nil || r2.State != string(engine.StateSuccess) || r2.Version != "2.0.0" || r2.CreatedBy != "runway server resync" {
		t.Errorf("R2 recorded as %+v (%v)", r2, err)
	}
	if g, _ := st.AgentGeneration(ctx, "dev", "web"); g != 2 {
		t.Errorf("recorded generation %d, want the agent's 2", g)
	}
	// Again: nothing left to end or record.
	if res, err := Resync(ctx, o); err != nil || len(res[0].Ended) != 0 || len(res[0].Recorded) != 0 {
		t.Errorf("second resync: %+v %v", res, err)
	}
	if _, err := Resync(ctx, ResyncOptions{DataDir: sdir, AgentURL: a.URL(), AgentTokenFile: o.AgentTokenFile, Service: "web"}); err == nil {
		t.Error("a service without its environment was accepted")
	}
}
