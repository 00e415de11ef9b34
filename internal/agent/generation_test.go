package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/supervisor"
)

// recordingFence is a caller's record of one service's generation, as a
// server's store would keep it.
type recordingFence struct {
	mu     sync.Mutex
	expect int64
	saw    []int64
}

func (f *recordingFence) Expect() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.expect
}

func (f *recordingFence) Saw(_ context.Context, g int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.saw = append(f.saw, g)
	f.expect = max(f.expect, g)
}

func generationOf(t *testing.T, c *agentapi.Client, env, svc string) agentapi.ServiceGeneration {
	t.Helper()
	h, err := c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range h.Generations {
		if g.Environment == env && g.Service == svc {
			return g
		}
	}
	return agentapi.ServiceGeneration{}
}

// TestGenerationFencing: every mutating call advances the service's
// generation and returns it; a caller whose record is below what a caller
// already proved it recorded is refused with nothing changed; a caller that
// lost only its last answer (crash between ack and record) is not; other
// services are not affected; generations and fences survive a restart.
func TestGenerationFencing(t *testing.T) {
	mark := testMark(t)
	dir := t.TempDir()
	ctx := context.Background()
	_, c := startAgentUntil(t, dir, &fakeProxy{})
	stopped := false
	defer func() {
		if !stopped {
			c.stop()
		}
	}()

	live := &recordingFence{}
	fctx := agentapi.WithFence(ctx, live)
	if _, _, err := c.CreateGroup(fctx, helloSpec("hello-r1", mark, 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRoute(fctx, agentapi.Route{Environment: "development", Service: "hello", Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRoute(fctx, agentapi.Route{Environment: "development", Service: "hello", Preview: true, Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 100}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ScaleGroup(fctx, "hello-r1", 0, 0); err != nil {
		t.Fatal(err)
	}
	// Reads neither advance nor carry the fence.
	if _, err := c.Group(fctx, "hello-r1"); err != nil {
		t.Fatal(err)
	}
	if want := []int64{1, 2, 3, 4}; len(live.saw) != 4 || live.saw[0] != 1 || live.saw[3] != 4 {
		t.Fatalf("generations returned %v, want %v (the preview route is the service's)", live.saw, want)
	}
	g := generationOf(t, c.Client, "development", "hello")
	if g.Generation != 4 || g.Fence != 3 {
		t.Fatalf("health reports %+v, want generation 4, fence 3 (the last call carried 3)", g)
	}

	// A caller that crashed between the agent's answer (4) and recording it
	// still holds 3, what it last sent: admitted.
	if _, err := c.ScaleGroup(agentapi.WithFence(ctx, &recordingFence{expect: 3}), "hello-r1", 0, 0); err != nil {
		t.Fatalf("a caller at the fence was refused: %v", err)
	}
	// The live caller (it recorded 4) moves the fence to 4.
	if _, err := c.ScaleGroup(fctx, "hello-r1", 0, 0); err != nil {
		t.Fatal(err)
	}
	// A rewound caller (its record is at 2) is refused, for every kind of
	// mutating call, and nothing changes.
	before, _ := c.Routes(ctx)
	old := agentapi.WithFence(ctx, &recordingFence{expect: 2})
	calls := map[string]func() error{
		"create": func() error { _, _, err := c.CreateGroup(old, helloSpec("hello-r2", mark, 0)); return err },
		"scale":  func() error { _, err := c.ScaleGroup(old, "hello-r1", 1, 0); return err },
		"delete": func() error { return c.DeleteGroup(old, "hello-r1", true, 0) },
		"route": func() error {
			_, err := c.PutRoute(old, agentapi.Route{Environment: "development", Service: "hello", Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 50}}})
			return err
		},
		"preview": func() error {
			return c.DeleteRoute(old, agentapi.RouteKey{Environment: "development", Service: "hello", Preview: true})
		},
		"delete route": func() error {
			return c.DeleteRoute(old, agentapi.RouteKey{Environment: "development", Service: "hello"})
		},
		"maintenance on": func() error {
			return c.SetMaintenance(old, agentapi.RouteKey{Environment: "development", Service: "hello"}, "down")
		},
		"maintenance off": func() error {
			return c.SetMaintenance(old, agentapi.RouteKey{Environment: "development", Service: "hello"}, "")
		},
		"explicit rewound": func() error {
			_, err := c.ScaleGroup(agentapi.WithFence(ctx, &recordingFence{expect: 0}), "hello-r1", 1, 0)
			return err
		},
	}
	for name, call := range calls {
		err := call()
		if !agentapi.IsStoreBehind(err) {
			t.Errorf("%s from a rewound caller: %v, want a store-behind refusal", name, err)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "behind") || !strings.Contains(msg, "resync") || !strings.Contains(msg, "development/hello") {
			t.Errorf("%s: refusal %q does not say what is wrong and how to recover", name, msg)
		}
	}
	after, _ := c.Routes(ctx)
	if len(after) != len(before) || after[0].Maintenance != "" || after[0].Backends[0].Weight != 100 {
		t.Errorf("routes changed by refused calls: %+v, were %+v", after, before)
	}
	if gr, err := c.Group(ctx, "hello-r1"); err != nil || gr.Spec.Instances != 0 {
		t.Errorf("group changed by refused calls: %+v %v", gr.Spec.Instances, err)
	}
	if _, err := c.Group(ctx, "hello-r2"); !agentapi.IsNotFound(err) {
		t.Errorf("a refused create made a group: %v", err)
	}
	if g := generationOf(t, c.Client, "development", "hello"); g.Generation != 6 || g.Fence != 4 {
		t.Errorf("after refusals %+v, want generation 6 and fence 4 unchanged", g)
	}

	// Another service is not fenced by this one; calls without the header
	// (an operator with curl) are not fenced at all.
	spec := helloSpec("other-r1", mark, 0)
	spec.Service = "other"
	if _, _, err := c.CreateGroup(agentapi.WithFence(ctx, &recordingFence{}), spec); err != nil {
		t.Errorf("another service was fenced: %v", err)
	}
	if _, err := c.ScaleGroup(ctx, "hello-r1", 0, 0); err != nil {
		t.Errorf("a call without %s was refused: %v", agentapi.ExpectGenerationHeader, err)
	}
	// A malformed header is a 400 naming it.
	if _, err := c.ScaleGroup(agentapi.WithFence(ctx, badFence{}), "hello-r1", 0, 0); err == nil {
		t.Error("a negative expected generation was accepted")
	} else {
		problemOf(t, err, 400, agentapi.ExpectGenerationHeader)
	}

	c.stop()
	stopped = true
	_, c2 := startAgentUntil(t, dir, &fakeProxy{})
	defer c2.stop()
	if g := generationOf(t, c2.Client, "development", "hello"); g.Generation != 7 || g.Fence != 4 {
		t.Errorf("after a restart %+v, want generation 7 and fence 4", g)
	}
	if _, err := c2.ScaleGroup(old, "hello-r1", 0, 0); !agentapi.IsStoreBehind(err) {
		t.Errorf("after a restart a rewound caller: %v, want refused", err)
	}
	if err := c2.DeleteGroup(fctx, "other-r1", true, 0); err != nil {
		t.Fatal(err)
	}
}

type badFence struct{}

func (badFence) Expect() int64              { return -1 }
func (badFence) Saw(context.Context, int64) {}

func TestCorruptGenerationsFileRefused(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       "{",
		"fence above":    `{"format":"runway-agent-generations/1","services":[{"environment":"dev","service":"a","generation":1,"fence":2}]}`,
		"unknown format": `{"format":"x","services":[]}`,
	} {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "generations.json"), []byte(body), 0o600)
		_, err := New(Options{DataDir: dir, Listen: "127.0.0.1:0"})
		var se *supervisor.StateError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "generations.json") {
			t.Errorf("%s: %v, want a state error naming the file", name, err)
		}
	}
}

// TestGenerationsConcurrent: calls on many services at once (their writes
// are group-committed) each get their own generation, and the file holds
// them all after a restart.
func TestGenerationsConcurrent(t *testing.T) {
	mark := testMark(t)
	dir := t.TempDir()
	ctx := context.Background()
	_, c := startAgentUntil(t, dir, &fakeProxy{})
	const services, calls = 12, 3
	var wg sync.WaitGroup
	fences := make([]*recordingFence, services)
	for i := range fences {
		fences[i] = &recordingFence{}
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			spec := helloSpec(fmt.Sprintf("svc%d-r1", i), mark, 0)
			spec.Service = fmt.Sprintf("svc%d", i)
			fctx := agentapi.WithFence(ctx, fences[i])
			if _, _, err := c.CreateGroup(fctx, spec); err != nil {
				t.Error(err)
				return
			}
			for j := 1; j < calls; j++ {
				if _, err := c.ScaleGroup(fctx, spec.Name, 0, 0); err != nil {
					t.Error(err)
				}
			}
		}(i)
	}
	wg.Wait()
	for i, f := range fences {
		if len(f.saw) != calls || f.saw[0] != 1 || f.saw[calls-1] != calls {
			t.Errorf("svc%d got generations %v, want 1..%d", i, f.saw, calls)
		}
	}
	c.stop()
	_, c2 := startAgentUntil(t, dir, &fakeProxy{})
	defer c2.stop()
	for i := 0; i < services; i++ {
		if g := generationOf(t, c2.Client, "development", fmt.Sprintf("svc%d", i)); g.Generation != calls || g.Fence != calls-1 {
			t.Errorf("svc%d after a restart: %+v, want generation %d, fence %d", i, g, calls, calls-1)
		}
	}
}
