package agent

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runwayhq/runway/internal/agentapi"
)

// A scale down asking for a drain of 2 s, on an agent whose default drain is
// an hour, ends the drain after 2 s: the WebSocket open on the stopped
// instance gets a close frame 1001 "going away" from the proxy, and the
// scale returns long before the default would have passed. A delete carries
// its own drain the same way. Bad drain values are refused by field.
func TestDrainTimeoutOfTheCall(t *testing.T) {
	mark := testMark(t)
	p, c, proxyURL := startAgentWithProxy(t, time.Hour)
	ctx := context.Background()
	const host = "hello.development.localhost"
	for _, g := range []string{"drain-a", "drain-b"} {
		if _, _, err := c.CreateGroup(ctx, helloSpec(g, mark, 1)); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, g+" healthy", func() bool {
			st, err := c.Group(ctx, g)
			return err == nil && st.Counts["healthy"] == 1
		})
	}
	dial := func(group string) *websocket.Conn {
		t.Helper()
		if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{host},
			Backends: []agentapi.Backend{{Group: group, Weight: 1}}}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "the route to "+group, func() bool {
			for _, ts := range p.Targets() {
				if ts.Group == group && !ts.Retired {
					return true
				}
			}
			return false
		})
		hc := &http.Client{Transport: &http.Transport{}}
		t.Cleanup(hc.CloseIdleConnections)
		ws, _, err := websocket.Dial(ctx, strings.Replace(proxyURL, "http://", "ws://", 1)+"/ws",
			&websocket.DialOptions{HTTPClient: hc, Host: host})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.CloseNow() })
		if err := ws.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
			t.Fatal(err)
		}
		if _, msg, err := ws.Read(ctx); err != nil || string(msg) != "ping" {
			t.Fatalf("echo through the proxy: %q %v", msg, err)
		}
		return ws
	}
	closed := func(ws *websocket.Conn) chan error {
		ch := make(chan error, 1)
		go func() {
			_, _, err := ws.Read(ctx)
			ch <- err
		}()
		return ch
	}

	// Scale down with a 2 s drain.
	ws := dial("drain-a")
	wsErr := closed(ws)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second) // the default (1h) would fail this
	defer cancel()
	start := time.Now()
	st, err := c.ScaleGroup(cctx, "drain-a", 0, 2*time.Second)
	if err != nil {
		t.Fatalf("scale to 0 with a 2s drain: %v", err)
	}
	took := time.Since(start)
	t.Logf("scale down with a 2s drain and an open WebSocket took %s", took)
	if len(st.Instances) != 0 {
		t.Errorf("after the scale down: %d instances", len(st.Instances))
	}
	if took < 2*time.Second {
		t.Errorf("the scale down returned after %s, before its 2s drain passed with a WebSocket open", took)
	}
	if err := <-wsErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("WebSocket across the scale down ended with %v, want a close frame 1001 going away", err)
	}

	// Delete with a 1 s drain, the same way.
	ws = dial("drain-b")
	wsErr = closed(ws)
	if _, err := c.PutRoute(ctx, agentapi.Route{Environment: "development", Service: "hello", Hosts: []string{host}}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteGroup(cctx, "drain-b", true, time.Second); err != nil {
		t.Fatalf("delete with a 1s drain: %v", err)
	}
	if err := <-wsErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Errorf("WebSocket across the delete ended with %v, want a close frame 1001 going away", err)
	}

	// Bad values: 400 naming the field, nothing changes.
	if _, _, err := c.CreateGroup(ctx, helloSpec("drain-c", mark, 1)); err != nil {
		t.Fatal(err)
	}
	var bad struct{}
	_, err = c.Do(ctx, http.MethodPut, "/v1/groups/drain-c/scale", map[string]any{"instances": 0, "drain_timeout": "-1s"}, &bad)
	problemOf(t, err, http.StatusBadRequest, "drain_timeout")
	_, err = c.Do(ctx, http.MethodDelete, "/v1/groups/drain-c?drain_timeout=2h", nil, nil)
	problemOf(t, err, http.StatusBadRequest, "drain_timeout")
	if g, err := c.Group(ctx, "drain-c"); err != nil || g.Spec.Instances != 1 || g.State != "active" {
		t.Errorf("drain-c after refused calls: %+v %v", g, err)
	}
}
