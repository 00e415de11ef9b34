package agent

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/supervisor"
)

type fakeProxy struct {
	mu      sync.Mutex
	drained map[string][]string
	targets []agentapi.GroupTargets
	routes  []agentapi.Route
}

func (f *fakeProxy) Drain(ctx context.Context, group string, ids []string, _ time.Duration) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.drained == nil {
		f.drained = map[string][]string{}
	}
	f.drained[group] = append(f.drained[group], ids...)
	return nil
}

func (f *fakeProxy) SetTargets(g []agentapi.GroupTargets) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = g
}

func (f *fakeProxy) SetRoutes(ctx context.Context, r []agentapi.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.routes = r
	return nil
}

func (f *fakeProxy) healthyTargets(group string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, g := range f.targets {
		if g.Group == group {
			return len(g.Targets)
		}
	}
	return -1
}

func problemOf(t *testing.T, err error, status int, field string) *agentapi.APIError {
	t.Helper()
	var ae *agentapi.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("err %v: want an API problem %d", err, status)
	}
	if ae.Status != status || ae.Field != field || ae.Detail == "" || !strings.HasPrefix(ae.Type, httpjson.ProblemTypeBase) {
		t.Fatalf("problem %+v: want status %d field %q", ae.Problem, status, field)
	}
	return ae
}

func TestAgentAPI(t *testing.T) {
	mark := testMark(t)
	fp := &fakeProxy{}
	a, c := startAgent(t, Options{Drainer: fp, Routes: fp, Targets: fp, Version: "test"})
	ctx := context.Background()

	// Token file, 0600; requests without it are refused with problem+json.
	st, err := os.Stat(filepath.Join(a.opts.DataDir, TokenFileName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v mode %v", err, st.Mode())
	}
	resp, err := http.Get(a.URL() + "/v1/groups")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), TokenFileName) {
		t.Errorf("no token: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	bad := agentapi.NewClient(a.URL(), "wrong")
	if _, err := bad.Groups(ctx); err == nil {
		t.Error("wrong token accepted")
	}
	h, err := bad.Health(ctx)
	if err != nil || h.Status != "ok" || h.Version != "test" {
		t.Errorf("health: %+v %v", h, err)
	}

	// Create, idempotent, conflict naming the field, validation naming the field.
	g, created, err := c.CreateGroup(ctx, helloSpec("hello-r1", mark, 2))
	if err != nil || !created || len(g.Instances) != 2 {
		t.Fatalf("create: %v created=%v", err, created)
	}
	if _, created, err := c.CreateGroup(ctx, helloSpec("hello-r1", mark, 2)); err != nil || created {
		t.Errorf("create again: created=%v err=%v", created, err)
	}
	other := helloSpec("hello-r1", mark, 2)
	other.Command = []string{"./hello", "--port", "{{PORT}}", "-v"}
	_, _, err = c.CreateGroup(ctx, other)
	problemOf(t, err, 409, "command")
	badSpec := helloSpec("hello-bad", mark, 1)
	badSpec.Command = []string{"./missing"}
	_, _, err = c.CreateGroup(ctx, badSpec)
	problemOf(t, err, 400, "command[0]")
	req, _ := http.NewRequest("POST", a.URL()+"/v1/groups", strings.NewReader(`{"name":"x","instances":"two"}`))
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, _ = http.DefaultClient.Do(req)
	var p agentapi.Problem
	json.NewDecoder(resp.Body).Decode(&p)
	resp.Body.Close()
	if resp.StatusCode != 400 || p.Field != "instances" {
		t.Errorf("instances as a string: %d %+v", resp.StatusCode, p)
	}
	if gs, _ := c.Groups(ctx); len(gs) != 1 {
		t.Errorf("groups after bad requests: %d", len(gs))
	}

	waitFor(t, 30*time.Second, "2 healthy instances pushed to the proxy", func() bool { return fp.healthyTargets("hello-r1") == 2 })
	g, _ = c.Group(ctx, "hello-r1")
	in := g.Instances[0]
	got, err := c.Instance(ctx, "hello-r1", in.ID)
	if err != nil || got.PID != in.PID {
		t.Errorf("instance: %+v %v", got, err)
	}
	_, err = c.Instance(ctx, "hello-r1", "00000000")
	problemOf(t, err, 404, "")

	// Logs (text and json), with filter.
	var lines []agentapi.LogLine
	waitFor(t, 30*time.Second, "startup log line", func() bool {
		lines = nil
		c.Logs(ctx, "hello-r1", in.ID, agentapi.LogQuery{Filter: "listening"}, func(l agentapi.LogLine) error {
			lines = append(lines, l)
			return nil
		})
		return len(lines) == 1
	})
	if lines[0].Stream != "stderr" || !strings.Contains(lines[0].Text, "hello v1.0.0 listening") {
		t.Errorf("log line %+v", lines[0])
	}
	req, _ = http.NewRequest("GET", a.URL()+"/v1/groups/hello-r1/instances/"+in.ID+"/logs?since=1h&tail=5", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, _ = http.DefaultClient.Do(req)
	text, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(text), " stderr ") || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Errorf("text logs: %s", text)
	}
	req, _ = http.NewRequest("GET", a.URL()+"/v1/groups/hello-r1/instances/"+in.ID+"/logs?tail=-1", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token())
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("tail=-1: %d", resp.StatusCode)
	}
	// Follow: the stream stays open and delivers new lines.
	fctx, fcancel := context.WithCancel(ctx)
	followed := make(chan agentapi.LogLine, 10)
	go c.Logs(fctx, "hello-r1", in.ID, agentapi.LogQuery{Follow: true, Filter: "stopping"}, func(l agentapi.LogLine) error {
		followed <- l
		return nil
	})

	// Routes: validation, persistence, proxy feed, delete protection.
	_, err = c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"hello.localhost"},
		Backends: []agentapi.Backend{{Group: "nope", Weight: 100}}})
	problemOf(t, err, 400, "backends[0].group")
	_, err = c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"bad host"},
		Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 100}}})
	problemOf(t, err, 400, "hosts[0]")
	rt, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"Hello.localhost"},
		Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 100}}})
	if err != nil || rt.Hosts[0] != "hello.localhost" {
		t.Fatalf("put route: %+v %v", rt, err)
	}
	fp.mu.Lock()
	if len(fp.routes) != 1 || fp.routes[0].Backends[0].Group != "hello-r1" {
		t.Errorf("routes pushed to the proxy: %+v", fp.routes)
	}
	fp.mu.Unlock()
	if rs, _ := c.Routes(ctx); len(rs) != 1 {
		t.Errorf("routes: %+v", rs)
	}
	err = c.DeleteGroup(ctx, "hello-r1", true, 0)
	problemOf(t, err, 409, "group")

	// Scale down: drained first, exactly one instance stopped.
	g, err = c.ScaleGroup(ctx, "hello-r1", 1, 0)
	if err != nil || len(g.Instances) != 1 {
		t.Fatalf("scale: %v", err)
	}
	fp.mu.Lock()
	if len(fp.drained["hello-r1"]) != 1 {
		t.Errorf("drained on scale down: %v", fp.drained)
	}
	fp.mu.Unlock()
	_, err = c.ScaleGroup(ctx, "hello-r1", -1, 0)
	problemOf(t, err, 400, "instances")
	_, err = c.ScaleGroup(ctx, "nope", 1, 0)
	problemOf(t, err, 404, "")

	// Route weight to 0, then delete (drains, then stops).
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Backends: []agentapi.Backend{}}); err != nil {
		t.Fatal(err)
	}
	last := g.Instances[0]
	if err := c.DeleteGroup(ctx, "hello-r1", true, 0); err != nil {
		t.Fatal(err)
	}
	_, err = c.Group(ctx, "hello-r1")
	problemOf(t, err, 404, "")
	fp.mu.Lock()
	if !slices.Contains(fp.drained["hello-r1"], last.ID) {
		t.Errorf("deleted instance %s not drained: %v", last.ID, fp.drained)
	}
	fp.mu.Unlock()
	if last.ID == in.ID {
		select {
		case l := <-followed:
			if !strings.Contains(l.Text, "stopping") {
				t.Errorf("followed line %+v", l)
			}
		case <-time.After(5 * time.Second):
			t.Error("follow did not deliver the SIGTERM log line of the instance")
		}
	}
	fcancel()

	// Routes survive an agent restart.
	b, err := os.ReadFile(filepath.Join(a.opts.DataDir, "routes.json"))
	if err != nil || !strings.Contains(string(b), RoutesFormat) {
		t.Errorf("routes file: %v %s", err, b)
	}
}

func TestCorruptRoutesFileRefused(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "routes.json"), []byte("{"), 0o600)
	_, err := New(Options{DataDir: dir, Listen: "127.0.0.1:0"})
	var se *supervisor.StateError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "routes.json") {
		t.Errorf("corrupt routes: %v", err)
	}
}

func TestListenMustBeLoopback(t *testing.T) {
	_, err := New(Options{DataDir: t.TempDir(), Listen: "0.0.0.0:7041"})
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Errorf("non-loopback listen: %v", err)
	}
}

func TestRoutesSurviveRestart(t *testing.T) {
	mark := testMark(t)
	dir := t.TempDir()
	ctx := context.Background()
	func() {
		_, c := startAgentUntil(t, dir, nil)
		defer c.stop()
		if _, _, err := c.CreateGroup(ctx, helloSpec("hello-r1", mark, 0)); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{"hello.localhost"},
			Backends: []agentapi.Backend{{Group: "hello-r1", Weight: 100}}}); err != nil {
			t.Fatal(err)
		}
	}()
	fp := &fakeProxy{}
	_, c := startAgentUntil(t, dir, fp)
	defer c.stop()
	rs, err := c.Routes(ctx)
	if err != nil || len(rs) != 1 || rs[0].Backends[0].Group != "hello-r1" || rs[0].Hosts[0] != "hello.localhost" {
		t.Fatalf("routes after restart: %+v %v", rs, err)
	}
	waitFor(t, 30*time.Second, "routes pushed to the proxy at start", func() bool {
		fp.mu.Lock()
		defer fp.mu.Unlock()
		return len(fp.routes) == 1
	})
	if g, err := c.Group(ctx, "hello-r1"); err != nil || g.State != "active" {
		t.Errorf("group after restart: %+v %v", g, err)
	}
}

type stoppableClient struct {
	*agentapi.Client
	stop func()
}

// startAgentUntil runs an in-process agent on dir until stop is called.
func startAgentUntil(t *testing.T, dir string, fp *fakeProxy) (*Agent, stoppableClient) {
	t.Helper()
	opts := Options{DataDir: dir, Listen: "127.0.0.1:0", StopInstances: true}
	opts.PortMin, opts.PortMax = portRange()
	if fp != nil {
		opts.Drainer, opts.Routes, opts.Targets = fp, fp, fp
	}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return a, stoppableClient{agentapi.NewClient(a.URL(), a.Token()), func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent Run: %v", err)
		}
	}}
}
