package strategy

import (
	"fmt"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
)

// simulate applies a plan's steps to a model of a target in which instances
// turn healthy when waited for, and checks the rolling invariants after every
// step: at most desired+surge instances, at least desired−unavailable healthy
// instances behind the routes, and never a route to a group without healthy
// instances.
func simulate(t *testing.T, p *Plan, olds []Group, surge, unavail int) (count map[string]int, routes []Route) {
	t.Helper()
	count, healthy := map[string]int{}, map[string]int{}
	for _, g := range olds {
		count[g.Name], healthy[g.Name] = g.Count, g.Count
		routes = append(routes, Route{g.Name, g.Weight})
	}
	d := p.Desired
	for i, st := range p.Deploy {
		switch s := st.(type) {
		case EnsureGroup:
			count[s.Group] = s.Count
		case WaitHealthy:
			if count[s.Group] < s.Min {
				t.Fatalf("step %d %v: group has only %d instances", i, s, count[s.Group])
			}
			healthy[s.Group] = count[s.Group]
		case ScaleGroup:
			count[s.Group] = s.Count
			healthy[s.Group] = min(healthy[s.Group], s.Count)
		case SetRoutes:
			routes = s.Routes
		default:
			t.Fatalf("unexpected step %v in a rolling plan", s)
		}
		total, serving := 0, 0
		for _, c := range count {
			total += c
		}
		for _, r := range routes {
			if healthy[r.Group] == 0 || r.Weight <= 0 {
				t.Fatalf("step %d %v: route to %s with %d healthy instances, weight %d", i, st, r.Group, healthy[r.Group], r.Weight)
			}
			// Traffic moves in proportion to healthy instances, and moves off
			// instances before they are removed.
			if r.Weight > healthy[r.Group] {
				t.Fatalf("step %d %v: weight of %s is %d but it has %d healthy instances", i, st, r.Group, r.Weight, healthy[r.Group])
			}
			serving += healthy[r.Group]
		}
		if total > d+surge {
			t.Fatalf("step %d %v: %d instances exceed desired %d + surge %d", i, st, total, d, surge)
		}
		if serving < d-unavail {
			t.Fatalf("step %d %v: %d serving instances, below desired %d − unavailable %d", i, st, serving, d, unavail)
		}
	}
	return count, routes
}

func TestRollingInvariants(t *testing.T) {
	for _, desired := range []int{1, 2, 3, 5, 8} {
		for _, surge := range []int{0, 1, 2, 10} {
			for _, unavail := range []int{0, 1, 2} {
				if surge == 0 && unavail == 0 || unavail >= desired {
					continue
				}
				for _, olds := range [][]Group{
					{{Name: "web-r1", Release: "R1", Count: desired, Healthy: desired}},
					{{Name: "web-a", Release: "A", Count: desired - desired/2, Healthy: desired - desired/2}, {Name: "web-b", Release: "B", Count: desired / 2, Healthy: desired / 2}},
				} {
					var cur []Group
					for _, g := range olds {
						if g.Count > 0 {
							g.Weight = g.Count
							cur = append(cur, g)
						}
					}
					name := fmt.Sprintf("d%d_s%d_u%d_groups%d", desired, surge, unavail, len(cur))
					t.Run(name, func(t *testing.T) {
						in := input(Rolling, desired, cur...)
						in.Deploy.Rolling = config.Rolling{MaxSurge: surge, MaxUnavailable: unavail}
						p, err := Make(in)
						if err != nil {
							t.Fatal(err)
						}
						count, routes := simulate(t, p, cur, surge, unavail)
						if count["web-r2"] != desired {
							t.Errorf("new group ends with %d instances, want %d", count["web-r2"], desired)
						}
						for _, g := range cur {
							if count[g.Name] != 0 {
								t.Errorf("old group %s ends with %d instances", g.Name, count[g.Name])
							}
						}
						if len(routes) != 1 || routes[0].Group != "web-r2" {
							t.Errorf("final routes %v, want only the new group", routes)
						}
						if len(p.Success) != len(cur) {
							t.Errorf("success deletes %v, want every old group", p.Success)
						}
					})
				}
			}
		}
	}
}

func TestRollingExactPlan(t *testing.T) {
	drain := 5 * time.Second
	t.Run("surge 1", func(t *testing.T) {
		in := input(Rolling, 2, Group{Name: "web-r1", Release: "R1", Count: 2, Healthy: 2, Weight: 100})
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 1},
			WaitHealthy{Group: "web-r2", Min: 1, MaxTerms: 3},
			SetRoutes{Routes: []Route{{"web-r2", 1}, {"web-r1", 2}}},
			SetRoutes{Routes: []Route{{"web-r2", 1}, {"web-r1", 1}}},
			ScaleGroup{Group: "web-r1", Count: 1, Drain: drain},
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 2},
			WaitHealthy{Group: "web-r2", Min: 2, MaxTerms: 3},
			SetRoutes{Routes: []Route{{"web-r2", 2}, {"web-r1", 1}}},
			SetRoutes{Routes: []Route{{"web-r2", 2}}},
			ScaleGroup{Group: "web-r1", Count: 0, Drain: drain},
		})
		assertSteps(t, "success", p.Success, Steps{DeleteGroup{Group: "web-r1", Drain: drain}})
		assertSteps(t, "check", p.Check, Steps{WaitHealthy{Group: "web-r2", Min: 2, MaxTerms: 3}})
	})
	t.Run("surge 0 unavailable 1, desired 1 is a stop-start", func(t *testing.T) {
		in := input(Rolling, 1, Group{Name: "web-r1", Release: "R1", Count: 1, Healthy: 1, Weight: 100})
		in.Deploy.Rolling = config.Rolling{MaxSurge: 0, MaxUnavailable: 1}
		p, err := Make(in)
		if err != nil {
			t.Fatal(err)
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			SetRoutes{},
			ScaleGroup{Group: "web-r1", Count: 0, Drain: drain},
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 1},
			WaitHealthy{Group: "web-r2", Min: 1, MaxTerms: 3},
			SetRoutes{Routes: []Route{{"web-r2", 1}}},
		})
	})
	t.Run("first release", func(t *testing.T) {
		p, err := Make(input(Rolling, 3))
		if err != nil {
			t.Fatal(err)
		}
		assertSteps(t, "deploy", p.Deploy, Steps{
			EnsureGroup{Group: "web-r2", Release: "R2", Count: 3},
			WaitHealthy{Group: "web-r2", Min: 3, MaxTerms: 3},
			SetRoutes{Routes: []Route{{"web-r2", 3}}},
		})
		assertSteps(t, "success", p.Success, nil)
	})
	t.Run("idle old group is deleted on success, not routed", func(t *testing.T) {
		idle := Group{Name: "web-r0", Release: "R0", Count: 1, Healthy: 1}
		p, err := Make(input(Rolling, 1, Group{Name: "web-r1", Release: "R1", Count: 1, Healthy: 1, Weight: 1}, idle))
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range p.Deploy {
			if r, ok := st.(SetRoutes); ok {
				for _, rt := range r.Routes {
					if rt.Group == "web-r0" {
						t.Errorf("idle group routed: %v", r)
					}
				}
			}
		}
		assertSteps(t, "success", p.Success, Steps{DeleteGroup{Group: "web-r1", Drain: drain}, DeleteGroup{Group: "web-r0", Drain: drain}})
	})
}

func TestJudge(t *testing.T) {
	a := Analyze{MinRequests: 100, MaxErrorRateIncrease: 0.01, MaxLatencyP99Ratio: 1.5, LatencySlack: 10 * time.Millisecond}
	ms := time.Millisecond
	tests := []struct {
		name           string
		a              Analyze
		canary, stable WindowStats
		want           Verdict
	}{
		{"too few requests", a, WindowStats{Requests: 99}, WindowStats{Requests: 1000}, Wait},
		{"no requests and min 0", Analyze{}, WindowStats{}, WindowStats{}, Wait},
		{"equal", a, WindowStats{Requests: 100, P99: 20 * ms}, WindowStats{Requests: 1000, P99: 20 * ms}, Pass},
		{"error increase at the limit", a, WindowStats{Requests: 100, Errors: 2}, WindowStats{Requests: 100, Errors: 1}, Pass},
		{"error increase over the limit", a, WindowStats{Requests: 100, Errors: 3}, WindowStats{Requests: 100, Errors: 1}, Fail},
		{"20% errors", a, WindowStats{Requests: 500, Errors: 100}, WindowStats{Requests: 5000}, Fail},
		{"stable worse than canary", a, WindowStats{Requests: 100, Errors: 5}, WindowStats{Requests: 100, Errors: 10}, Pass},
		{"p99 ratio over", a, WindowStats{Requests: 100, P99: 100 * ms}, WindowStats{Requests: 100, P99: 50 * ms}, Fail},
		{"p99 ratio at limit", a, WindowStats{Requests: 100, P99: 75 * ms}, WindowStats{Requests: 100, P99: 50 * ms}, Pass},
		{"p99 ratio over but within slack", a, WindowStats{Requests: 100, P99: 4 * ms}, WindowStats{Requests: 100, P99: 1 * ms}, Pass},
		{"latency rule disabled", Analyze{MinRequests: 1, MaxErrorRateIncrease: 1}, WindowStats{Requests: 100, P99: time.Second}, WindowStats{Requests: 100, P99: ms}, Pass},
		{"stable without traffic: error rate only", a, WindowStats{Requests: 100, Errors: 1, P99: time.Second}, WindowStats{}, Pass},
		{"stable without traffic, canary failing", a, WindowStats{Requests: 100, Errors: 2}, WindowStats{}, Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := Judge(tt.a, tt.canary, tt.stable)
			if got != tt.want {
				t.Fatalf("Judge = %v (%s), want %v", got, why, tt.want)
			}
			if why == "" {
				t.Error("no reason given")
			}
		})
	}
	m := Merge(WindowStats{Requests: 10, Errors: 1, P99: ms}, WindowStats{Requests: 30, Errors: 3, P99: 3 * ms})
	if m != (WindowStats{Requests: 40, Errors: 4, P99: 3 * ms}) || m.ErrorRate() != 0.1 {
		t.Errorf("Merge = %+v", m)
	}
	for _, v := range []Verdict{Wait, Pass, Fail} {
		if v.String() == "" {
			t.Error("verdict without name")
		}
	}
}
