package proxy

import (
	"context"
	"io"
	"math"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/naming"
)

func TestSmoothWeightedSequenceIsExactAndSpread(t *testing.T) {
	gs := []*group{{id: "a", weight: 10}, {id: "b", weight: 90}}
	seq := smoothWeightedSequence(gs)
	if len(seq) != 10 { // reduced by the gcd
		t.Fatalf("sequence length %d, want 10", len(seq))
	}
	n := 0
	for _, g := range seq {
		if g == 0 {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("group a %d times in a period, want 1", n)
	}
	seq = smoothWeightedSequence([]*group{{weight: 5}, {weight: 1}, {weight: 1}})
	if got := seqString(seq); got != "0010200" && got != "0012000" && got != "0100200" {
		t.Logf("sequence %s", got) // any order with a spread-out minority is fine; the count is what matters
	}
}

func seqString(s []uint16) string {
	var b strings.Builder
	for _, i := range s {
		b.WriteByte(byte('0' + i))
	}
	return b.String()
}

// 50 clients send continuously while the table switches between two groups
// 200 times: no request fails, and a request that started and finished
// between two switches was served by the group of the switch before it.
func TestSwitchUnderLoad(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	blue := []*backend{newBackend(t, "blue/1", nil), newBackend(t, "blue/2", nil)}
	green := []*backend{newBackend(t, "green/1", nil), newBackend(t, "green/2", nil)}
	groups := map[string][]Target{
		"blue":  {blue[0].target(), blue[1].target()},
		"green": {green[0].target(), green[1].target()},
	}
	cfgFor := func(g string) Config { return oneService([]Backend{{Group: g, Weight: 100}}, groups) }
	mustUpdate(t, p, cfgFor("blue"))

	type gen struct {
		n     int
		group string
	}
	var current atomic.Pointer[gen]
	current.Store(&gen{0, "blue"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{}, 1024) // one token per finished request
	var failures, wrong, total atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	c := p.client(t)
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				before := current.Load()
				req, _ := http.NewRequestWithContext(ctx, "GET", webURL+"/", nil)
				resp, err := c.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						failures.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
					}
					return
				}
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				total.Add(1)
				if err != nil || resp.StatusCode != 200 {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, resp.Status)
				}
				served, _, _ := strings.Cut(resp.Header.Get("X-Backend"), "/")
				if after := current.Load(); after == before && before.group != "" && served != before.group {
					wrong.Add(1)
				}
				select {
				case done <- struct{}{}:
				default:
				}
			}
		}()
	}
	for i := 1; i <= 200; i++ {
		for range 25 { // let some requests through on each version
			<-done
		}
		g := "blue"
		if i%2 == 1 {
			g = "green"
		}
		current.Store(&gen{-i, ""}) // switching: requests overlapping it are not checked
		mustUpdate(t, p, cfgFor(g))
		current.Store(&gen{i, g})
	}
	for range 25 {
		<-done
	}
	cancel()
	wg.Wait()
	if failures.Load() != 0 || wrong.Load() != 0 {
		t.Fatalf("%d requests: %d failed (first: %v), %d reached the old group after a switch", total.Load(), failures.Load(), firstErr.Load(), wrong.Load())
	}
	t.Logf("%d requests over 200 switches, none failed", total.Load())
}

func TestWeightsTenNinety(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	a, b := newBackend(t, "canary/1", nil), newBackend(t, "stable/1", nil)
	b2 := newBackend(t, "stable/2", nil)
	mustUpdate(t, p, oneService([]Backend{{Group: "canary", Weight: 10}, {Group: "stable", Weight: 90}},
		map[string][]Target{"canary": {a.target()}, "stable": {b.target(), b2.target()}}))
	c := p.client(t)
	const n, workers = 10000, 8
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range n / workers {
				resp, err := c.Get(webURL + "/")
				if err != nil {
					failed.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Fatalf("%d requests failed", failed.Load())
	}
	share := float64(a.hits.Load()) / n
	if math.Abs(share-0.10) > 0.01 || a.hits.Load()+b.hits.Load()+b2.hits.Load() != n {
		t.Fatalf("canary got %d of %d (%.2f%%), stable %d+%d; want 10%% ± 1%%", a.hits.Load(), n, share*100, b.hits.Load(), b2.hits.Load())
	}
	t.Logf("canary %d, stable %d + %d", a.hits.Load(), b.hits.Load(), b2.hits.Load())
}

func TestStickyCookieKeepsClientOnGroup(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	a, b := newBackend(t, "a/1", nil), newBackend(t, "b/1", nil)
	cfg := oneService([]Backend{{Group: "a", Weight: 50}, {Group: "b", Weight: 50}},
		map[string][]Target{"a": {a.target()}, "b": {b.target()}})
	cfg.Routes[0].Sticky = true
	mustUpdate(t, p, cfg)
	seen := map[string]bool{}
	for range 6 {
		c := p.clientWithJar(t)
		resp, _ := get(t, c, webURL+"/")
		first := resp.Header.Get("X-Backend")
		seen[first] = true
		for range 20 {
			if resp, _ := get(t, c, webURL+"/"); resp.Header.Get("X-Backend") != first {
				t.Fatalf("sticky client moved from %s to %s", first, resp.Header.Get("X-Backend"))
			}
		}
	}
	if len(seen) != 2 {
		t.Fatalf("six new clients all went to %v; want both groups used", seen)
	}
	// A group taken out of the route (weight 0) no longer holds its clients.
	c := p.clientWithJar(t)
	for {
		resp, _ := get(t, c, webURL+"/")
		if resp.Header.Get("X-Backend") == "a/1" {
			break
		}
		c = p.clientWithJar(t)
	}
	cfg.Routes[0].Backends[0].Weight = 0
	mustUpdate(t, p, cfg)
	if resp, _ := get(t, c, webURL+"/"); resp.Header.Get("X-Backend") != "b/1" {
		t.Fatalf("client stuck to a group without weight: %s", resp.Header.Get("X-Backend"))
	}
}

func TestPowerOfTwoChoicesPrefersIdleTarget(t *testing.T) {
	busy := &target{instance: "busy"}
	idle := &target{instance: "idle"}
	busy.inflight.Store(10)
	g := &group{targets: []*target{busy, idle}}
	for range 100 {
		if got := g.pick(0, nil); got != idle {
			t.Fatalf("picked %s with 10 in flight over an idle target", got.instance)
		}
	}
	idle.ejectedUntil.Store(1 << 62)
	if got := g.pick(0, nil); got != busy {
		t.Fatalf("picked an ejected target")
	}
	if got := g.pick(0, busy); got != nil {
		t.Fatalf("picked %v, want none (one excluded, one ejected)", got)
	}
}

func BenchmarkRoutePick(b *testing.B) {
	mk := func(n int) []*target {
		ts := make([]*target, n)
		for i := range ts {
			ts[i] = &target{}
		}
		return ts
	}
	r := &route{groups: []*group{{id: "a", weight: 10, targets: mk(4)}, {id: "b", weight: 90, targets: mk(4)}}}
	r.seq = smoothWeightedSequence(r.groups)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, t := r.pick(0, "", nil)
			t.acquire(0)
			t.release()
		}
	})
}

func BenchmarkLookup(b *testing.B) {
	cfg := Config{Groups: map[string][]Target{}}
	for _, s := range []string{"web", "api", "admin", "docs", "shop"} {
		cfg.Routes = append(cfg.Routes, Route{Environment: "production", Service: s, Hosts: []string{naming.Service(s, "production", "")}})
	}
	cfg.Routes = append(cfg.Routes, Route{Environment: "production", Service: "v2", Hosts: []string{"api.production.localhost"}, PathPrefix: "/v2"})
	reg := newRegistry(nil)
	tbl := compile(&cfg, tableBuilder{service: reg.service,
		target: func(agentapi.RouteKey, string, Target) *target { return nil },
		stats:  func(agentapi.RouteKey, string) *groupStats { return nil }})
	b.ReportAllocs()
	for b.Loop() {
		h, _ := naming.NormalizeHost("api.production.localhost:8080")
		if tbl.lookup(h, "/v2/users") == nil {
			b.Fatal("no route")
		}
	}
}
