package netplan

import (
	"flag"
	"fmt"
	"math/rand"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runwayhq/runway/internal/config"
)

var update = flag.Bool("update", false, "rewrite golden files")

func project(envs ...*config.Environment) *config.Project {
	return &config.Project{Name: "saas", Domain: "example.com", Environments: envs}
}

func mustAllocate(t *testing.T, p *config.Project, lock *Lock) *Plan {
	t.Helper()
	in, err := InputFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := Allocate(in, lock)
	if err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestAllocateDefaults(t *testing.T) {
	p := project(
		&config.Environment{Name: "development", Target: "local"},
		&config.Environment{Name: "staging", Target: "aws", Region: "us-east-2"},
		&config.Environment{Name: "production", Target: "aws", Region: "us-east-2", Protected: true},
	)
	plan := mustAllocate(t, p, nil)
	if len(plan.Networks) != 2 {
		t.Fatalf("networks = %d, want 2 (development has no region)", len(plan.Networks))
	}
	prod := plan.Networks[1]
	checks := map[string]string{
		"staging":           plan.Networks[0].CIDR.String(),
		"production":        prod.CIDR.String(),
		"production zone a": prod.Zones[0].CIDR.String(),
		"production zone c": prod.Zones[2].CIDR.String(),
		"public":            prod.Zones[0].Subnets[0].CIDR.String(),
		"private":           prod.Zones[0].Subnets[1].CIDR.String(),
		"spare zone":        prod.Spare[0].String(),
	}
	want := map[string]string{
		"staging":           "10.0.0.0/16",
		"production":        "10.1.0.0/16",
		"production zone a": "10.1.0.0/18",
		"production zone c": "10.1.128.0/18",
		"public":            "10.1.0.0/20",
		"private":           "10.1.16.0/20",
		"spare zone":        "10.1.192.0/18",
	}
	for k, w := range want {
		if checks[k] != w {
			t.Errorf("%s = %s, want %s", k, checks[k], w)
		}
	}
	if prod.Hosts != 65534 || prod.Zones[0].Subnets[0].Hosts != 4094 {
		t.Errorf("hosts = %d / %d, want 65534 / 4094", prod.Hosts, prod.Zones[0].Subnets[0].Hosts)
	}
	if prod.Zones[1].Name != "us-east-2b" {
		t.Errorf("zone name = %s", prod.Zones[1].Name)
	}
	// 2 regions, 6 zones, 24 subnets.
	if plan.Lock.Len() != 32 || len(plan.New) != 32 {
		t.Errorf("lock has %d entries, %d new; want 32", plan.Lock.Len(), len(plan.New))
	}
}

func TestReservedNeverOverlapped(t *testing.T) {
	p := project(
		&config.Environment{Name: "staging", Region: "us-east-2"},
		&config.Environment{Name: "production", Region: "us-east-2"},
	)
	p.Network.Reserved = []string{"10.0.0.0/16", "10.1.64.0/24"}
	plan := mustAllocate(t, p, nil)
	if got := plan.Networks[0].CIDR.String(); got != "10.1.0.0/16" && got != "10.2.0.0/16" {
		t.Fatalf("staging = %s", got)
	}
	for _, n := range plan.Networks {
		for _, r := range plan.Reserved {
			if n.CIDR.Overlaps(r) {
				t.Errorf("%s overlaps reserved %s", n.CIDR, r)
			}
		}
	}
	if plan.Networks[0].CIDR.String() != "10.2.0.0/16" {
		t.Errorf("staging = %s, want 10.2.0.0/16 (10.1.64.0/24 reserved blocks 10.1.0.0/16)", plan.Networks[0].CIDR)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name string
		mod  func(p *config.Project)
		lock string
		want []string
	}{
		{"exhausted space", func(p *config.Project) { p.Network.IPSpace = "10.0.0.0/16" }, "",
			[]string{"no free /16 left for production/us-east-2", "ip_space 10.0.0.0/16"}},
		{"reserved fills space", func(p *config.Project) {
			p.Network.IPSpace = "10.0.0.0/15"
			p.Network.Reserved = []string{"10.1.0.0/16"}
		}, "", []string{"no free /16 left for production/us-east-2 in ip_space 10.0.0.0/15", "reserved 10.1.0.0/16"}},
		{"too many zones", func(p *config.Project) { p.Environments[0].Zones = []string{"a", "b", "c", "d", "e"} }, "",
			[]string{"no free /18 left for staging/us-east-2/us-east-2e in network staging/us-east-2 10.0.0.0/16"}},
		{"lock overlaps new reserved", func(p *config.Project) { p.Network.Reserved = []string{"10.1.128.0/17"} },
			"region \"production/us-east-2\" {\n  cidr = \"10.1.0.0/16\"\n}\n",
			[]string{"production/us-east-2 10.1.0.0/16 overlaps reserved range 10.1.128.0/17"}},
		{"lock collision", nil,
			"region \"production/us-east-2\" {\n  cidr = \"10.1.0.0/16\"\n}\nregion \"staging/us-east-2\" {\n  cidr = \"10.1.0.0/16\"\n}\n",
			[]string{"production/us-east-2 10.1.0.0/16 overlaps staging/us-east-2 10.1.0.0/16"}},
		{"lock outside space", func(p *config.Project) { p.Network.IPSpace = "172.16.0.0/12" },
			"region \"production/us-east-2\" {\n  cidr = \"10.1.0.0/16\"\n}\n",
			[]string{"production/us-east-2 10.1.0.0/16 lies outside ip_space 172.16.0.0/12"}},
		{"settings changed under the lock", func(p *config.Project) { p.Network.RegionPrefix = 17 },
			"region \"production/us-east-2\" {\n  cidr = \"10.1.0.0/16\"\n}\n",
			[]string{"production/us-east-2 is 10.1.0.0/16 but the network settings ask for /17 blocks"}},
		{"bad space", func(p *config.Project) { p.Network.IPSpace = "10.0.0.1/8" }, "", []string{"did you mean 10.0.0.0/8"}},
		{"ipv6", func(p *config.Project) { p.Network.IPSpace = "fd00::/8" }, "", []string{"only IPv4"}},
		{"prefix order", func(p *config.Project) { p.Network.ZonePrefix = 16 }, "", []string{"region_prefix (/16) < zone_prefix (/16)"}},
		{"too many tiers", func(p *config.Project) { p.Network.Tiers = []string{"a", "b", "c", "d", "e"} }, "", []string{"5 tiers do not fit in a /18 zone"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(
				&config.Environment{Name: "staging", Region: "us-east-2"},
				&config.Environment{Name: "production", Region: "us-east-2"},
			)
			if tt.mod != nil {
				tt.mod(p)
			}
			var lock *Lock
			if tt.lock != "" {
				var err error
				if lock, err = ParseLock([]byte(tt.lock), LockFileName); err != nil {
					t.Fatal(err)
				}
			}
			in, err := InputFrom(p)
			if err == nil {
				_, err = Allocate(in, lock)
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

// randomProject builds a project of random environments, regions and zones.
func randomProject(rng *rand.Rand) *config.Project {
	regions := []string{"us-east-1", "us-east-2", "eu-west-1", "ap-south-1"}
	p := project()
	p.Network.IPSpace = []string{"10.0.0.0/8", "10.0.0.0/12", "172.16.0.0/12"}[rng.Intn(3)]
	if rng.Intn(2) == 0 {
		p.Network.Reserved = []string{fmt.Sprintf("10.%d.0.0/16", rng.Intn(8)), "172.16.128.0/20"}
	}
	n := 1 + rng.Intn(6)
	for i := 0; i < n; i++ {
		for _, r := range regions {
			if rng.Intn(3) > 0 {
				continue
			}
			e := &config.Environment{Name: fmt.Sprintf("env%d", i), Target: "aws", Region: r}
			for z := 0; z < 1+rng.Intn(4); z++ {
				e.Zones = append(e.Zones, string(rune('a'+z)))
			}
			p.Environments = append(p.Environments, e)
		}
	}
	return p
}

// checkPlan asserts the plan's invariants: inside their parents, the right
// sizes, no overlaps between siblings nor with reserved ranges.
func checkPlan(t *testing.T, in Input, plan *Plan) {
	t.Helper()
	var all []netip.Prefix
	for _, n := range plan.Networks {
		if !contains(in.Space, n.CIDR) || n.CIDR.Bits() != in.RegionPrefix {
			t.Fatalf("%s/%s %s not a /%d inside %s", n.Environment, n.Region, n.CIDR, in.RegionPrefix, in.Space)
		}
		for _, o := range all {
			if o.Overlaps(n.CIDR) {
				t.Fatalf("%s overlaps %s", n.CIDR, o)
			}
		}
		all = append(all, n.CIDR)
		var zones []netip.Prefix
		for _, z := range n.Zones {
			if !contains(n.CIDR, z.CIDR) || z.CIDR.Bits() != in.ZonePrefix {
				t.Fatalf("zone %s %s outside %s", z.Name, z.CIDR, n.CIDR)
			}
			for _, o := range zones {
				if o.Overlaps(z.CIDR) {
					t.Fatalf("zone %s overlaps %s", z.CIDR, o)
				}
			}
			zones = append(zones, z.CIDR)
			var subs []netip.Prefix
			for _, s := range z.Subnets {
				if !contains(z.CIDR, s.CIDR) || s.CIDR.Bits() != in.SubnetPrefix {
					t.Fatalf("subnet %s outside %s", s.CIDR, z.CIDR)
				}
				for _, o := range subs {
					if o.Overlaps(s.CIDR) {
						t.Fatalf("subnet %s overlaps %s", s.CIDR, o)
					}
				}
				subs = append(subs, s.CIDR)
			}
		}
		for _, r := range in.Reserved {
			if n.CIDR.Overlaps(r) {
				t.Fatalf("%s overlaps reserved %s", n.CIDR, r)
			}
		}
	}
}

func TestPropertyRandomProjects(t *testing.T) {
	rng := rand.New(rand.NewSource(6))
	for i := 0; i < 300; i++ {
		p := randomProject(rng)
		in, err := InputFrom(p)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := Allocate(in, nil)
		if err != nil {
			if strings.Contains(err.Error(), "no free") {
				continue // exhaustion is a valid answer for small spaces
			}
			t.Fatalf("case %d: %v", i, err)
		}
		checkPlan(t, in, plan)

		// Determinism: the same input gives the same lock.
		again, err := Allocate(in, nil)
		if err != nil || string(again.Lock.Bytes()) != string(plan.Lock.Bytes()) {
			t.Fatalf("case %d: not deterministic (%v)", i, err)
		}

		// Stability: the lock survives a round trip, and adding environments,
		// regions and zones (anywhere in the file) moves nothing recorded.
		lock, err := ParseLock(plan.Lock.Bytes(), LockFileName)
		if err != nil {
			t.Fatalf("case %d: parse own lock: %v\n%s", i, err, plan.Lock.Bytes())
		}
		grown := randomProject(rng)
		grown.Network = p.Network
		for _, e := range p.Environments {
			e2 := *e
			if len(e2.Zones) < 4 && rng.Intn(2) == 0 {
				e2.Zones = append(append([]string{}, e2.Zones...), "d")
				if len(e.Zones) == 4 {
					e2.Zones = e.Zones
				}
			}
			grown.Environments = append(grown.Environments, &e2)
		}
		rng.Shuffle(len(grown.Environments), func(a, b int) {
			grown.Environments[a], grown.Environments[b] = grown.Environments[b], grown.Environments[a]
		})
		grown.Environments = dedupe(grown.Environments)
		gin, err := InputFrom(grown)
		if err != nil {
			t.Fatal(err)
		}
		next, err := Allocate(gin, lock)
		if err != nil {
			if strings.Contains(err.Error(), "no free") {
				continue
			}
			t.Fatalf("case %d grown: %v", i, err)
		}
		checkPlan(t, gin, next)
		for _, k := range plan.Lock.Keys() {
			if next.Lock.Get(k) != plan.Lock.Get(k) {
				t.Fatalf("case %d: %s moved from %s to %s", i, k, plan.Lock.Get(k), next.Lock.Get(k))
			}
		}
	}
}

// dedupe keeps the first environment of each name-region pair.
func dedupe(envs []*config.Environment) []*config.Environment {
	seen := map[string]bool{}
	var out []*config.Environment
	for _, e := range envs {
		if seen[e.Name+"/"+e.Region] {
			continue
		}
		seen[e.Name+"/"+e.Region] = true
		out = append(out, e)
	}
	return out
}

func TestAddingKeepsAllocations(t *testing.T) {
	p := project(&config.Environment{Name: "production", Region: "us-east-2"})
	first := mustAllocate(t, p, nil)
	// staging declared before production, a new zone, a new tier: production stays.
	p2 := project(
		&config.Environment{Name: "staging", Region: "us-east-2"},
		&config.Environment{Name: "production", Region: "us-east-2", Zones: []string{"a", "b", "c", "d"}},
	)
	p2.Network.Tiers = []string{"public", "private", "data", "spare"}
	second := mustAllocate(t, p2, first.Lock)
	if got := second.Networks[1].CIDR.String(); got != "10.0.0.0/16" {
		t.Errorf("production moved to %s", got)
	}
	if got := second.Networks[0].CIDR.String(); got != "10.1.0.0/16" {
		t.Errorf("staging = %s, want the next free 10.1.0.0/16", got)
	}
	if got := second.Networks[1].Zones[3].CIDR.String(); got != "10.0.192.0/18" {
		t.Errorf("zone d = %s, want the spare 10.0.192.0/18", got)
	}
	if len(second.New) != 1+3+12+1+4 {
		t.Errorf("new = %d: %v", len(second.New), second.New)
	}
	// A removed environment keeps its range reserved.
	p3 := project(&config.Environment{Name: "qa", Region: "us-east-2"})
	third := mustAllocate(t, p3, second.Lock)
	if got := third.Networks[0].CIDR.String(); got != "10.2.0.0/16" {
		t.Errorf("qa = %s, want 10.2.0.0/16 (released ranges stay in the lock)", got)
	}
}

func TestLockGolden(t *testing.T) {
	p := project(
		&config.Environment{Name: "staging", Region: "us-east-2", Zones: []string{"a", "b"}},
		&config.Environment{Name: "production", Region: "us-east-2"},
	)
	p.Network.Reserved = []string{"10.0.0.0/16"}
	plan := mustAllocate(t, p, nil)
	golden(t, "lock.golden.hcl", plan.Lock.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (go test -update to accept):\n%s", path, got)
	}
}

func TestInputFromZones(t *testing.T) {
	p := project(
		&config.Environment{Name: "dev", Target: "local"},
		&config.Environment{Name: "eu", Target: "aws", Region: "eu-west-1", Zones: []string{"b", "eu-west-1c"}},
		&config.Environment{Name: "us", Target: "aws", Region: "us-east-1"},
	)
	p.Network.Zones = 2
	in, err := InputFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprint(in.Networks)
	want := "[{eu eu-west-1 [eu-west-1b eu-west-1c]} {us us-east-1 [us-east-1a us-east-1b]}]"
	if got != want {
		t.Errorf("networks = %s, want %s", got, want)
	}
	if in.Space.String() != DefaultIPSpace || in.RegionPrefix != 16 || len(in.Tiers) != 4 {
		t.Errorf("defaults not applied: %+v", in)
	}
}
