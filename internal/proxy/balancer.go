package proxy

import (
	"math/rand/v2"
	"sync/atomic"

	"github.com/runwayhq/runway/internal/agentapi"
)

// route is the compiled form of a Route inside one table.
type route struct {
	key         agentapi.RouteKey
	prefix      string
	sticky      bool
	cookie      string
	maintenance string
	groups      []*group // weight > 0 only
	seq         []uint16 // smooth weighted round-robin order of group indexes
	next        atomic.Uint64
	svc         *service
}

type group struct {
	id      string
	weight  int
	targets []*target
	stats   *groupStats
}

// smoothWeightedSequence precomputes one period of nginx's smooth weighted
// round robin (weights reduced by their gcd): over every period each group is
// chosen exactly weight times, spread as evenly as possible. Requests then
// only increment an atomic counter to walk it, so the split is exact over time
// without a lock.
func smoothWeightedSequence(groups []*group) []uint16 {
	if len(groups) == 0 {
		return nil
	}
	d := 0
	for _, g := range groups {
		d = gcd(d, g.weight)
	}
	total := 0
	w := make([]int, len(groups))
	for i, g := range groups {
		w[i] = g.weight / d
		total += w[i]
	}
	cur := make([]int, len(groups))
	seq := make([]uint16, 0, total)
	for range total {
		best := 0
		for i := range cur {
			cur[i] += w[i]
			if cur[i] > cur[best] {
				best = i
			}
		}
		cur[best] -= total
		seq = append(seq, uint16(best))
	}
	return seq
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// pick chooses a group and a usable target for a new request: the sticky
// group if it still has weight and a usable target, else the next group in
// the weighted order that has one. except is a target to avoid (the one whose
// connection just failed). It returns nil when no target is usable.
func (r *route) pick(now int64, sticky string, except *target) (*group, *target) {
	if sticky != "" {
		for _, g := range r.groups {
			if g.id == sticky {
				if t := g.pick(now, except); t != nil {
					return g, t
				}
				break
			}
		}
	}
	n := len(r.seq)
	if n == 0 {
		return nil, nil
	}
	start := r.next.Add(1) - 1
	var tried uint64 // bitmask of group indexes already tried (first 64)
	left := len(r.groups)
	for i := 0; i < n && left > 0; i++ {
		gi := r.seq[(start+uint64(i))%uint64(n)]
		if gi < 64 {
			if tried&(1<<gi) != 0 {
				continue
			}
			tried |= 1 << gi
			left--
		}
		g := r.groups[gi]
		if t := g.pick(now, except); t != nil {
			return g, t
		}
	}
	return nil, nil
}

// pick applies the power of two choices: two targets at random, the one with
// fewer requests in flight wins. Ejected targets and except are skipped.
func (g *group) pick(now int64, except *target) *target {
	ts := g.targets
	n := len(ts)
	switch n {
	case 0:
		return nil
	case 1:
		if t := ts[0]; t != except && !t.ejected(now) {
			return t
		}
		return nil
	}
	i := rand.IntN(n)
	j := rand.IntN(n - 1)
	if j >= i {
		j++
	}
	a, b := ts[i], ts[j]
	aok := a != except && !a.ejected(now)
	bok := b != except && !b.ejected(now)
	switch {
	case aok && bok:
		if b.inflight.Load() < a.inflight.Load() {
			return b
		}
		return a
	case aok:
		return a
	case bok:
		return b
	}
	for k := 1; k < n; k++ {
		t := ts[(i+k)%n]
		if t != except && !t.ejected(now) {
			return t
		}
	}
	return nil
}
