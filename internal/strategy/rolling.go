package strategy

import "fmt"

// planRolling replaces the serving groups' instances in batches: never more
// than desired+max_surge instances run, never fewer than
// desired−max_unavailable healthy ones serve. Each batch starts new instances,
// waits until they are healthy, moves traffic in proportion to healthy
// instance counts, then shrinks the old groups (traffic first, instances
// after, so no request goes to an instance being stopped).
func planRolling(in Input, p *Plan) error {
	s, u := in.Deploy.Rolling.MaxSurge, in.Deploy.Rolling.MaxUnavailable
	d := p.Desired
	drain := in.Deploy.DrainTimeout.Duration
	old := serving(in)
	counts := make([]int, len(old))
	o := 0
	for i, g := range old {
		counts[i] = g.Count
		o += g.Count
	}
	routes := func(n int) SetRoutes {
		var r []Route
		if n > 0 {
			r = append(r, Route{Group: p.Group, Weight: n})
		}
		for i, g := range old {
			if counts[i] > 0 {
				r = append(r, Route{Group: g.Name, Weight: counts[i]})
			}
		}
		return SetRoutes{Routes: r}
	}
	n := 0
	for n < d || o > 0 {
		progressed := false
		// Grow the new group as far as the surge allows.
		if up := min(d, d+s-o); up > n {
			n = up
			progressed = true
			p.Deploy = append(p.Deploy,
				EnsureGroup{Group: p.Group, Release: in.Release, Count: n},
				WaitHealthy{Group: p.Group, Min: n},
				routes(n),
			)
		}
		// Shrink the old groups as far as availability allows.
		down := max(0, d-u-n)
		if n >= d {
			down = 0
		}
		if down >= o {
			if !progressed {
				// Unreachable for valid input; guards against a loop.
				return fmt.Errorf("%w: rolling cannot make progress with max_surge %d, max_unavailable %d", ErrInvalid, s, u)
			}
			continue
		}
		remove := o - down
		for i := len(old) - 1; i >= 0 && remove > 0; i-- {
			k := min(counts[i], remove)
			counts[i] -= k
			remove -= k
		}
		o = down
		p.Deploy = append(p.Deploy, routes(n))
		for i, g := range old {
			if counts[i] < g.Count {
				p.Deploy = append(p.Deploy, ScaleGroup{Group: g.Name, Count: counts[i], Drain: drain})
				old[i].Count = counts[i]
			}
		}
	}
	p.Check = Steps{WaitHealthy{Group: p.Group, Min: d}}
	p.Success = deleteAll(in)
	return nil
}
