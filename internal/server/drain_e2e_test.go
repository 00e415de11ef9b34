package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runwayhq/runway/internal/agentapi"
)

// The first release of a service whose route switch hits a host conflict
// (another service already claims its host name) rolls back at once: there
// is no route to remove, so clean-up deletes the new group and the release
// ends FailureClean, instead of retrying "remove routes" until its deadline
// and ending FailureDirty with the group left running.
func TestFirstReleaseHostConflictEndsClean(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	// Runway refuses a host another service serves (validate and the
	// server); an operator's route made on the agent directly is the one
	// way left for a release's first route switch to hit a host conflict.
	ctx := context.Background()
	if _, _, err := c.agentAPI.CreateGroup(ctx, agentapi.GroupSpec{Name: "other-manual", Project: "manual", Service: "other",
		Environment: env, ReleaseID: "manual", Version: "1", Command: []string{helloBin, "--port", "{{PORT}}"}, WorkDir: c.dir,
		Env: map[string]string{"TEST_MARK": c.mark, "GREETING": "e2e"}, Instances: 1,
		Health: agentapi.HealthCheck{Type: "http", Path: "/healthz", Interval: agentapi.Duration(200 * time.Millisecond)}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the operator's instance", func() bool {
		g, err := c.agentAPI.Group(ctx, "other-manual")
		return err == nil && len(g.Instances) == 1 && g.Instances[0].State == agentapi.StateHealthy
	})
	if _, err := c.agentAPI.PutRoute(ctx, agentapi.Route{Project: "manual", Environment: env, Service: "other", Hosts: []string{host(service)},
		Backends: []agentapi.Backend{{Group: "other-manual", Weight: 100}}}); err != nil {
		t.Fatal(err)
	}

	c.writeManifest(manifest{Desired: 1})
	rel := c.wait(c.submit(service, "1").ID, 45*time.Second)
	mustState(t, rel, "FailureClean")
	if !strings.Contains(rel.Error, "is already routed to manual/dev/other") {
		t.Errorf("release error %q does not name the host conflict", rel.Error)
	}
	removes := 0
	for _, e := range rel.Events {
		if strings.Contains(e.Message, "remove routes") {
			removes++
		}
	}
	if removes > 2 {
		t.Errorf("%d \"remove routes\" events, want the step once (a no-op)", removes)
	}
	if gs := c.groups(service); len(gs) != 0 {
		t.Errorf("groups of %s left after FailureClean: %d", service, len(gs))
	}
	// The operator's service keeps the host.
	if got := c.versions(service, 10); got["1"] != 10 {
		t.Errorf("%s answers %v, want the other service (v1) on every request", host(service), got)
	}
	if err := c.agentAPI.DeleteRoute(ctx, agentapi.RouteKey{Project: "manual", Environment: env, Service: "other"}); err != nil {
		t.Fatal(err)
	}
	if err := c.agentAPI.DeleteGroup(ctx, "other-manual", true, time.Second); err != nil {
		t.Fatal(err)
	}
}

// The instances of a failed release crash with the one line that says why;
// after FailureClean and the deletion of their group, that line is still
// readable through the agent API, by group and instance.
func TestFailedReleaseLogsKept(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	group, pids := c.servingGroup(service)
	c.writeManifest(manifest{MaxTerms: 2, Env: map[string]string{"REQUIRE": "DATABASE_URL"}})
	stop := c.load(service)
	rel := c.deploy(service, "2")
	noFailures(t, "failed release", stop())
	c.failedRelease(rel, "DeployError", group, pids)
	if !strings.Contains(rel.Error, "FATAL: DATABASE_URL is not set") {
		t.Errorf("release error %q does not quote the crash line", rel.Error)
	}

	ctx := context.Background()
	lgs, err := c.agentAPI.LogGroups(ctx, env, service)
	if err != nil {
		t.Fatal(err)
	}
	var failed *agentapi.LogGroup
	for i := range lgs {
		if lgs[i].ReleaseID == rel.ID {
			failed = &lgs[i]
		}
	}
	if failed == nil || failed.DeletedAt.IsZero() || len(failed.Instances) == 0 {
		t.Fatalf("kept logs of the failed release %s: %+v (all: %+v)", rel.ID, failed, lgs)
	}
	for _, g := range c.groups(service) {
		if g.Name == failed.Group {
			t.Fatalf("group %s of the failed release still exists", g.Name)
		}
	}
	for _, in := range failed.Instances {
		var lines []string
		err := c.agentAPI.Logs(ctx, failed.Group, in.ID, agentapi.LogQuery{Filter: "FATAL"}, func(l agentapi.LogLine) error {
			lines = append(lines, l.Stream+" "+l.Text)
			return nil
		})
		if err != nil {
			t.Fatalf("logs of instance %s of the deleted group %s: %v", in.ID, failed.Group, err)
		}
		if len(lines) == 0 || lines[0] != "stderr FATAL: DATABASE_URL is not set" {
			t.Errorf("logs of instance %s of the deleted group: %q, want the FATAL line", in.ID, lines)
		}
	}
}

// A WebSocket open on v1 across a release of v2 with drain_timeout = "10s"
// (the agent's own default is 5s here) holds the old group's drain for 10 s,
// then gets a close frame 1001 "going away" instead of being cut; no other
// request fails.
func TestWebSocketAcrossDeployGetsGoingAway(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{DrainTimeout: "10s"})
	mustState(t, c.deploy(service, "1"), "Success")
	oldGroup, _ := c.servingGroup(service)

	ctx := context.Background()
	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	ws, _, err := websocket.Dial(ctx, "ws://"+c.proxyHTTP+"/ws", &websocket.DialOptions{HTTPClient: hc, Host: host(service)})
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if err := ws.Write(ctx, websocket.MessageText, []byte("v1?")); err != nil {
		t.Fatal(err)
	}
	if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "v1?" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	type end struct {
		err error
		at  time.Time
	}
	ended := make(chan end, 1)
	go func() {
		_, _, err := ws.Read(ctx)
		ended <- end{err, time.Now()}
	}()

	stop := c.load(service)
	rel := c.deploy(service, "2")
	noFailures(t, "release of v2 with a WebSocket open on v1", stop())
	mustState(t, rel, "Success")
	c.onlyVersion(service, "2")
	var e end
	select {
	case e = <-ended:
	case <-time.After(30 * time.Second):
		t.Fatal("the WebSocket on v1 is still open 30 s after the release ended")
	}
	if websocket.CloseStatus(e.err) != websocket.StatusGoingAway {
		t.Errorf("WebSocket on v1 ended with %v, want a close frame 1001 going away", e.err)
	}
	var deleteAt time.Time
	for _, ev := range rel.Events {
		if strings.Contains(ev.Message, "delete group "+oldGroup) && deleteAt.IsZero() {
			deleteAt = ev.At
		}
	}
	if deleteAt.IsZero() {
		t.Fatalf("no event deletes the old group %s", oldGroup)
	}
	held := e.at.Sub(deleteAt)
	t.Logf("the WebSocket held the drain of %s for %s", oldGroup, held.Round(time.Millisecond))
	if held < 10*time.Second {
		t.Errorf("the WebSocket was closed %s after the old group's deletion began, before the release's 10s drain", held)
	}
}
