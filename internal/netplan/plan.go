package netplan

import (
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strings"

	"github.com/runwayhq/runway/internal/config"
)

// Defaults used when a Project's network block leaves a field at its zero
// value (the config loader normally fills them from the schema).
const (
	DefaultIPSpace      = "10.0.0.0/8"
	DefaultRegionPrefix = 16
	DefaultZonePrefix   = 18
	DefaultSubnetPrefix = 20
	DefaultZones        = 3
)

// DefaultTiers are the subnet tiers of every zone, in allocation order.
var DefaultTiers = []string{"public", "private", "data", "spare"}

// Input is everything the allocator needs, already parsed.
type Input struct {
	Space        netip.Prefix
	Reserved     []netip.Prefix
	RegionPrefix int
	ZonePrefix   int
	SubnetPrefix int
	Tiers        []string
	// Networks are the environment-regions to plan, in allocation order.
	Networks []NetworkRequest
}

// NetworkRequest asks for one environment-region and its zones.
type NetworkRequest struct {
	Environment string
	Region      string
	Zones       []string // full zone names, such as us-east-2a
}

// Key is the lock path of the environment-region, "production/us-east-2".
func (r NetworkRequest) Key() string { return r.Environment + "/" + r.Region }

var tierName = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// InputFrom reads the network settings and the environments that have a
// region (cloud targets) from a project. Environments without a region run on
// this machine and get no network.
func InputFrom(p *config.Project) (Input, error) {
	n := p.Network
	in := Input{
		RegionPrefix: orInt(n.RegionPrefix, DefaultRegionPrefix),
		ZonePrefix:   orInt(n.ZonePrefix, DefaultZonePrefix),
		SubnetPrefix: orInt(n.SubnetPrefix, DefaultSubnetPrefix),
		Tiers:        n.Tiers,
	}
	if len(in.Tiers) == 0 {
		in.Tiers = DefaultTiers
	}
	space := n.IPSpace
	if space == "" {
		space = DefaultIPSpace
	}
	var err error
	if in.Space, err = parsePrefix("network.ip_space", space); err != nil {
		return Input{}, err
	}
	for i, r := range n.Reserved {
		pr, err := parsePrefix(fmt.Sprintf("network.reserved[%d]", i), r)
		if err != nil {
			return Input{}, err
		}
		in.Reserved = append(in.Reserved, pr)
	}
	zones := orInt(n.Zones, DefaultZones)
	for _, e := range p.Environments {
		if e == nil || e.Region == "" {
			continue
		}
		req := NetworkRequest{Environment: e.Name, Region: e.Region}
		suffixes := e.Zones
		if len(suffixes) == 0 {
			for i := 0; i < zones && i < 26; i++ {
				suffixes = append(suffixes, string(rune('a'+i)))
			}
		}
		for _, z := range suffixes {
			req.Zones = append(req.Zones, ZoneName(e.Region, z))
		}
		in.Networks = append(in.Networks, req)
	}
	return in, nil
}

// ZoneName returns the availability zone name for a suffix ("a") or a full
// name ("us-east-2a") in a region.
func ZoneName(region, zone string) string {
	if strings.HasPrefix(zone, region) {
		return zone
	}
	return region + zone
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func parsePrefix(what, s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%s %q is not a CIDR range such as 10.0.0.0/8", what, s)
	}
	if !p.Addr().Is4() {
		return netip.Prefix{}, fmt.Errorf("%s %s: only IPv4 ranges are planned", what, s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%s %s is not the start of its range; did you mean %s?", what, s, p.Masked())
	}
	return p, nil
}

// Plan is the result of an allocation.
type Plan struct {
	Space    netip.Prefix   `json:"ip_space"`
	Reserved []netip.Prefix `json:"reserved,omitempty"`
	Networks []*Network     `json:"networks"`
	// Lock holds every allocation, including those of environments no longer
	// declared (they stay reserved until removed from the lock by hand).
	Lock *Lock `json:"-"`
	// New lists the lock keys allocated by this run (not read from the lock).
	New []string `json:"-"`
}

// Network is the block of one environment-region.
type Network struct {
	Environment string       `json:"environment"`
	Region      string       `json:"region"`
	CIDR        netip.Prefix `json:"cidr"`
	Hosts       int          `json:"hosts"`
	Zones       []*Zone      `json:"zones"`
	// Spare are the zone-sized blocks of the network no zone uses yet.
	Spare []netip.Prefix `json:"spare,omitempty"`
}

// Zone is the block of one availability zone.
type Zone struct {
	Name    string       `json:"name"`
	CIDR    netip.Prefix `json:"cidr"`
	Hosts   int          `json:"hosts"`
	Subnets []*Subnet    `json:"subnets"`
}

// Subnet is one tier of a zone.
type Subnet struct {
	Tier  string       `json:"tier"`
	CIDR  netip.Prefix `json:"cidr"`
	Hosts int          `json:"hosts"`
}

// Hosts is the number of usable host addresses of a range (network and
// broadcast addresses excluded), as the plan prints it.
func Hosts(p netip.Prefix) int {
	n := 1 << (32 - p.Bits())
	if n <= 2 {
		return n
	}
	return n - 2
}

// Allocate plans in against the earlier allocations of lock (nil for none).
// It never changes an allocation found in the lock.
func Allocate(in Input, lock *Lock) (*Plan, error) {
	if err := validate(in); err != nil {
		return nil, err
	}
	if lock == nil {
		lock = &Lock{}
	}
	out := &Plan{Space: in.Space, Reserved: in.Reserved, Lock: lock.clone()}
	a := &allocator{in: in, lock: out.Lock, children: map[string][]netip.Prefix{}}
	for _, k := range out.Lock.Keys() {
		a.children[parentKey(k)] = append(a.children[parentKey(k)], out.Lock.Get(k))
	}
	if err := a.checkLock(); err != nil {
		return nil, err
	}
	for _, req := range in.Networks {
		key := req.Key()
		cidr, err := a.take(key, in.Space, in.RegionPrefix, "ip_space")
		if err != nil {
			return nil, err
		}
		nw := &Network{Environment: req.Environment, Region: req.Region, CIDR: cidr, Hosts: Hosts(cidr)}
		for _, z := range req.Zones {
			zc, err := a.take(key+"/"+z, cidr, in.ZonePrefix, "network "+key)
			if err != nil {
				return nil, err
			}
			zone := &Zone{Name: z, CIDR: zc, Hosts: Hosts(zc)}
			for _, t := range in.Tiers {
				sc, err := a.take(key+"/"+z+"/"+t, zc, in.SubnetPrefix, "zone "+key+"/"+z)
				if err != nil {
					return nil, err
				}
				zone.Subnets = append(zone.Subnets, &Subnet{Tier: t, CIDR: sc, Hosts: Hosts(sc)})
			}
			nw.Zones = append(nw.Zones, zone)
		}
		nw.Spare = a.free(key, cidr, in.ZonePrefix)
		out.Networks = append(out.Networks, nw)
	}
	out.New = a.added
	return out, nil
}

func validate(in Input) error {
	if !in.Space.IsValid() || !in.Space.Addr().Is4() {
		return fmt.Errorf("network.ip_space: an IPv4 range is required")
	}
	if !(in.Space.Bits() <= in.RegionPrefix && in.RegionPrefix < in.ZonePrefix && in.ZonePrefix < in.SubnetPrefix && in.SubnetPrefix <= 28) {
		return fmt.Errorf("network prefixes must satisfy ip_space (/%d) <= region_prefix (/%d) < zone_prefix (/%d) < subnet_prefix (/%d) <= /28",
			in.Space.Bits(), in.RegionPrefix, in.ZonePrefix, in.SubnetPrefix)
	}
	seenTier := map[string]bool{}
	for _, t := range in.Tiers {
		if !tierName.MatchString(t) || t == "cidr" {
			return fmt.Errorf("network.tiers: %q is not a tier name (a lower-case letter, then letters, digits, dashes or underscores; not \"cidr\")", t)
		}
		if seenTier[t] {
			return fmt.Errorf("network.tiers: %q is listed twice", t)
		}
		seenTier[t] = true
	}
	if slots := 1 << (in.SubnetPrefix - in.ZonePrefix); len(in.Tiers) > slots {
		return fmt.Errorf("network.tiers: %d tiers do not fit in a /%d zone (%d /%d subnets at most)", len(in.Tiers), in.ZonePrefix, slots, in.SubnetPrefix)
	}
	seen := map[string]bool{}
	for _, r := range in.Networks {
		if seen[r.Key()] {
			return fmt.Errorf("environment %s lists region %s twice", r.Environment, r.Region)
		}
		seen[r.Key()] = true
		zs := map[string]bool{}
		for _, z := range r.Zones {
			if zs[z] {
				return fmt.Errorf("environment %s lists zone %s twice", r.Environment, z)
			}
			zs[z] = true
		}
	}
	return nil
}

type allocator struct {
	in    Input
	lock  *Lock
	added []string
	// children are the ranges allocated under each parent key ("" for the
	// environment-regions), so finding a free block needs no scan of the lock.
	children map[string][]netip.Prefix
}

// checkLock verifies the recorded allocations still fit the settings: inside
// their parent, of the configured size, clear of reserved ranges and of each
// other.
func (a *allocator) checkLock() error {
	keys := a.lock.Keys()
	for _, k := range keys {
		p := a.lock.Get(k)
		depth := strings.Count(k, "/")
		want, parent, parentName := 0, netip.Prefix{}, ""
		switch depth {
		case 1:
			want, parent, parentName = a.in.RegionPrefix, a.in.Space, "ip_space"
		case 2:
			want, parentName = a.in.ZonePrefix, "network "+parentKey(k)
			parent = a.lock.Get(parentKey(k))
		case 3:
			want, parentName = a.in.SubnetPrefix, "zone "+parentKey(k)
			parent = a.lock.Get(parentKey(k))
		default:
			return fmt.Errorf("runway.lock.hcl: %q is not an allocation path", k)
		}
		if !parent.IsValid() {
			return fmt.Errorf("runway.lock.hcl: %s %s has no enclosing %s in the lock", k, p, parentName)
		}
		if p.Bits() != want {
			return fmt.Errorf("runway.lock.hcl: %s is %s but the network settings ask for /%d blocks; keep the settings or remove the allocation from the lock", k, p, want)
		}
		if !contains(parent, p) {
			return fmt.Errorf("runway.lock.hcl: %s %s lies outside %s %s", k, p, parentName, parent)
		}
		for _, r := range a.in.Reserved {
			if p.Overlaps(r) {
				return fmt.Errorf("runway.lock.hcl: %s %s overlaps reserved range %s; move the reserved range or remove the allocation from the lock", k, p, r)
			}
		}
	}
	// Siblings never overlap: compare allocations under the same parent.
	byParent := map[string][]string{}
	for _, k := range keys {
		byParent[parentKey(k)] = append(byParent[parentKey(k)], k)
	}
	for _, pk := range sortedKeys(byParent) {
		sib := byParent[pk]
		for i, k := range sib {
			for _, o := range sib[i+1:] {
				if a.lock.Get(k).Overlaps(a.lock.Get(o)) {
					return fmt.Errorf("runway.lock.hcl: %s %s overlaps %s %s", k, a.lock.Get(k), o, a.lock.Get(o))
				}
			}
		}
	}
	return nil
}

func parentKey(k string) string {
	if i := strings.LastIndexByte(k, '/'); i >= 0 && strings.Count(k, "/") > 1 {
		return k[:i]
	}
	return ""
}

func contains(outer, inner netip.Prefix) bool {
	return outer.Bits() <= inner.Bits() && outer.Contains(inner.Addr())
}

// siblings are the ranges already taken under key's parent.
func (a *allocator) siblings(key string) []netip.Prefix { return a.children[parentKey(key)] }

// take returns the locked range of key, or allocates the lowest free aligned
// block of the given size inside parent and records it.
func (a *allocator) take(key string, parent netip.Prefix, bits int, parentName string) (netip.Prefix, error) {
	if p := a.lock.Get(key); p.IsValid() {
		return p, nil
	}
	taken := a.siblings(key)
	var blockedBy []string
	for cand := range blocks(parent, bits) {
		ok := true
		for _, t := range taken {
			if cand.Overlaps(t) {
				ok = false
				break
			}
		}
		for _, r := range a.in.Reserved {
			if ok && cand.Overlaps(r) {
				ok = false
				blockedBy = appendOnce(blockedBy, r.String())
			}
		}
		if ok {
			a.lock.Set(key, cand)
			a.added = append(a.added, key)
			a.children[parentKey(key)] = append(a.children[parentKey(key)], cand)
			return cand, nil
		}
	}
	msg := fmt.Sprintf("no free /%d left for %s in %s %s: %d of %d blocks allocated", bits, key, parentName, parent, len(taken), 1<<(bits-parent.Bits()))
	if len(blockedBy) > 0 {
		msg += ", the rest overlap reserved " + strings.Join(blockedBy, ", ")
	}
	return netip.Prefix{}, fmt.Errorf("%s; widen the range, lower the count, or release allocations in runway.lock.hcl", msg)
}

// free lists the blocks of the given size inside parent (the range of key)
// that neither an allocation nor a reserved range uses.
func (a *allocator) free(key string, parent netip.Prefix, bits int) []netip.Prefix {
	used := append(append([]netip.Prefix(nil), a.children[key]...), a.in.Reserved...)
	var out []netip.Prefix
	for cand := range blocks(parent, bits) {
		ok := true
		for _, u := range used {
			if cand.Overlaps(u) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, cand)
		}
	}
	return out
}

// blocks yields the aligned blocks of size bits inside parent, lowest first.
func blocks(parent netip.Prefix, bits int) func(func(netip.Prefix) bool) {
	return func(yield func(netip.Prefix) bool) {
		a4 := parent.Addr().As4()
		base := uint32(a4[0])<<24 | uint32(a4[1])<<16 | uint32(a4[2])<<8 | uint32(a4[3])
		n := uint64(1) << (bits - parent.Bits())
		step := uint64(1) << (32 - bits)
		for i := uint64(0); i < n; i++ {
			v := base + uint32(i*step)
			addr := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
			if !yield(netip.PrefixFrom(addr, bits)) {
				return
			}
		}
	}
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// Lock is the set of recorded allocations, keyed by path:
// "env/region", "env/region/zone" and "env/region/zone/tier".
type Lock struct {
	m map[string]netip.Prefix
}

// Get returns the range recorded for key, or the zero Prefix.
func (l *Lock) Get(key string) netip.Prefix { return l.m[key] }

// Set records a range for key.
func (l *Lock) Set(key string, p netip.Prefix) {
	if l.m == nil {
		l.m = map[string]netip.Prefix{}
	}
	l.m[key] = p
}

// Len is the number of allocations.
func (l *Lock) Len() int { return len(l.m) }

// Keys returns the allocation paths in sorted order.
func (l *Lock) Keys() []string {
	keys := make([]string, 0, len(l.m))
	for k := range l.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (l *Lock) clone() *Lock {
	c := &Lock{}
	for k, v := range l.m {
		c.Set(k, v)
	}
	return c
}
