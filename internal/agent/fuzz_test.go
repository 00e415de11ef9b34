package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"
)

func FuzzDecodeGroupSpec(f *testing.F) {
	f.Add([]byte(`{"name":"hello-r1","service":"hello","environment":"development","release_id":"r1","version":"1.0.0","command":["sh","-c","echo {{PORT}}"],"env":{"A":"{{INSTANCE_ID}}"},"instances":3,"health":{"type":"http","path":"/healthz","interval":"1s","timeout":"500ms","start_period":"5s","healthy_threshold":1,"unhealthy_threshold":3},"stop_timeout":"30s","limits":{"cpu":0.5,"memory_mb":128}}`))
	f.Add([]byte(`{"name":"x","instances":"two"}`))
	f.Add([]byte(`{"name":"x","health":{"interval":12}}`))
	f.Add([]byte(`{"name":"x"} {}`))
	f.Add([]byte(`{"name":"x","env":{"{{PORT}}":"\u0000"}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		spec, err := DecodeGroupSpec(b)
		if err != nil {
			if _, ok := err.(*supervisor.FieldError); !ok {
				t.Fatalf("error %T %v: want a *FieldError", err, err)
			}
			return
		}
		if err := supervisor.NormalizeSpec(&spec); err != nil {
			if _, ok := err.(*supervisor.FieldError); !ok {
				t.Fatalf("Normalize error %T %v: want a *FieldError", err, err)
			}
			return
		}
		// A normalized spec survives a JSON round trip unchanged.
		enc, err := json.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeGroupSpec(enc)
		if err != nil {
			t.Fatalf("re-decode %s: %v", enc, err)
		}
		if err := supervisor.NormalizeSpec(&again); err != nil {
			t.Fatalf("re-normalize %s: %v", enc, err)
		}
		if f := supervisor.DiffField(spec, again); f != "" {
			t.Fatalf("round trip changed %s: %s", f, enc)
		}
	})
}

// FuzzDecodeGroupSecrets: any body decodes or fails with a *FieldError
// that never quotes the body.
func FuzzDecodeGroupSecrets(f *testing.F) {
	f.Add([]byte(`{"values":{"DATABASE_URL":"postgres://u:p@h/db"}}`))
	f.Add([]byte(`{"values":{"A":1}}`))
	f.Add([]byte(`{"values":null}`))
	f.Add([]byte(`{"values":{"A":"zzz-secret-zzz"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := DecodeGroupSecrets(b)
		if err == nil {
			return
		}
		if _, ok := err.(*supervisor.FieldError); !ok {
			t.Fatalf("error %T %v: want a *FieldError", err, err)
		}
		if bytes.Contains(b, []byte("zzz-secret-zzz")) && strings.Contains(err.Error(), "zzz") {
			t.Fatalf("the error quotes the body: %v", err)
		}
	})
}

func FuzzDecodeScale(f *testing.F) {
	f.Add([]byte(`{"instances":3}`))
	f.Add([]byte(`{"instances":-1}`))
	f.Add([]byte(`{"instances":1e9}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"instances":1,"drain_timeout":"10s"}`))
	f.Add([]byte(`{"instances":1,"drain_timeout":"-1s"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, drain, err := DecodeScale(b)
		if err == nil && (n < 0 || n > supervisor.MaxInstances || drain < 0 || drain > MaxDrainTimeout) {
			t.Fatalf("accepted %d, drain %s", n, drain)
		}
	})
}

func FuzzDecodeRoute(f *testing.F) {
	f.Add("production", "hello", []byte(`{"hosts":["hello.example.test","www.hello.test"],"backends":[{"group":"hello-r1","weight":90},{"group":"hello-r2","weight":10}]}`))
	f.Add("production", "hello", []byte(`{"backends":[{"group":"a","weight":0}]}`))
	f.Add("staging", "web", []byte(`{"environment":"production"}`))
	f.Add("x", "y", []byte(`{"hosts":["A..b"]}`))
	f.Fuzz(func(t *testing.T, env, svc string, b []byte) {
		r, err := DecodeRoute(agentapi.RouteKey{Environment: env, Service: svc}, b)
		if err != nil {
			return
		}
		if r.Environment != env || r.Service != svc {
			t.Fatalf("route %s/%s accepted for URL %s/%s", r.Environment, r.Service, env, svc)
		}
		total := 0
		for _, be := range r.Backends {
			if be.Weight < 0 || be.Group == "" {
				t.Fatalf("bad backend accepted: %+v", be)
			}
			total += be.Weight
		}
		if len(r.Backends) > 0 && total == 0 {
			t.Fatal("all-zero weights accepted")
		}
	})
}

func FuzzParseLogQuery(f *testing.F) {
	f.Add("since=5m&filter=error&stream=stderr&tail=10&follow=true&format=json")
	f.Add("since=2026-01-02T15:04:05Z")
	f.Add("tail=-3&follow=maybe")
	f.Add("since=-5m")
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		q, format, err := ParseLogQuery(v, now)
		if err != nil {
			return
		}
		if q.Tail < 0 || (format != "text" && format != "json") || (q.Stream != "" && q.Stream != "stdout" && q.Stream != "stderr") {
			t.Fatalf("bad query accepted: %+v %s", q, format)
		}
		if q.Since.After(now) && v.Get("since") != "" {
			if _, perr := time.Parse(time.RFC3339Nano, v.Get("since")); perr != nil {
				t.Fatalf("duration since %q is in the future", v.Get("since"))
			}
		}
	})
}

// FuzzRouteAcceptance requires that the agent API and the proxy accept
// exactly the same routes: DecodeRoute (decode and validate a PUT body for a
// URL's key) accepts a body if and only if a real proxy's Update accepts the
// route it describes, as the agent would hand it over. A route the agent
// accepts also survives its own JSON round trip (the routes file).
func FuzzRouteAcceptance(f *testing.F) {
	f.Add("", "development", "web", false, []byte(`{"hosts":["web.example.test"],"backends":[{"group":"web-r1","weight":1}]}`))
	f.Add("a", "development", "web", true, []byte(`{"hosts":["Web-Preview.A.test"],"path_prefix":"/api","sticky":true,"backends":[{"group":"g","weight":1000}]}`))
	f.Add("", "development", "web_1", false, []byte(`{"backends":[]}`))
	p, err := proxy.New(proxy.Options{HTTPAddr: proxy.Off, HTTPSAddr: proxy.Off})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, project, env, svc string, preview bool, b []byte) {
		key := agentapi.RouteKey{Project: project, Environment: env, Service: svc, Preview: preview}
		r, agentErr := DecodeRoute(key, b)

		var raw agentapi.Route
		if err := decodeStrict(b, &raw); err != nil {
			if agentErr == nil {
				t.Fatalf("the agent accepted a body that does not decode: %v", err)
			}
			return // not JSON of a route: nothing to hand to the proxy
		}
		if raw.Project == "" {
			raw.Project = project
		}
		if raw.Environment == "" {
			raw.Environment = env
		}
		if raw.Service == "" {
			raw.Service = svc
		}
		if raw.Key() != (agentapi.RouteKey{Project: project, Environment: env, Service: svc, Preview: raw.Preview}) || raw.Preview && !preview {
			if agentErr == nil {
				t.Fatalf("the agent accepted body key %s for URL key %s", raw.Key(), key)
			}
			return // body and URL disagree: an API matter the proxy never sees
		}
		raw.Preview = preview
		cfg := proxy.Config{Routes: []proxy.Route{proxyRoute(raw)}, Groups: map[string][]proxy.Target{}}
		for _, be := range raw.Backends {
			cfg.Groups[be.Group] = []proxy.Target{}
		}
		proxyErr := p.Update(cfg)
		if (agentErr == nil) != (proxyErr == nil) {
			t.Fatalf("route %s %s: agent says %v, proxy says %v", key, b, agentErr, proxyErr)
		}
		if agentErr != nil {
			var fe *supervisor.FieldError
			if !errors.As(agentErr, &fe) || fe.Field == "" {
				t.Fatalf("agent error %T %v: want a *FieldError naming the field", agentErr, agentErr)
			}
			return
		}
		if r.Key() != key {
			t.Fatalf("route stored under %s for URL key %s", r.Key(), key)
		}
		enc, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeRoute(key, enc)
		if err != nil {
			t.Fatalf("an accepted route does not decode again: %v\n%s", err, enc)
		}
		if again.Key() != key || strings.Join(again.Hosts, ",") != strings.Join(r.Hosts, ",") || again.PathPrefix != r.PathPrefix {
			t.Fatalf("round trip changed the route: %+v, then %+v", r, again)
		}
	})
}
