package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// logGroupPoll is how often following logs looks for groups the service
// gained (a deploy's new group) to follow them too.
var logGroupPoll = 500 * time.Millisecond

// logRetry is the wait before a group's followed stream that failed (the
// agent restarted) is opened again.
const logRetry = time.Second

// logGroup is a group whose lines a logs request reads.
type logGroup struct {
	name, release, version string
}

// logSource resolves a logs request: the service's target and the groups
// to read now (the live ones, or the release's own group with q.Release,
// also after its deletion: the target keeps its logs), plus a lister of
// the live groups for following.
func (b *backend) logSource(ctx context.Context, q apiwire.LogsQuery) (target.Target, target.ServiceRef, func(context.Context) ([]logGroup, error), error) {
	ref := target.ServiceRef{Project: q.Project, Environment: q.Environment, Service: q.Service}
	drv, err := b.targetOf(ctx, q.Project, q.Environment)
	if err != nil {
		return nil, ref, nil, err
	}
	if q.Release != "" {
		rel, err := b.st.GetRelease(ctx, q.Release)
		if errors.Is(err, store.ErrNotFound) || (err == nil && (rel.Project != q.Project || rel.Environment != q.Environment || rel.Service != q.Service)) {
			return nil, ref, nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "no release %s of service %s in environment %s; list them with: runway releases %s --env %s", q.Release, q.Service, q.Environment, q.Service, q.Environment)
		}
		if err != nil {
			return nil, ref, nil, err
		}
		g := logGroup{name: strategy.GroupName(rel.Service, rel.ID, drv.Capabilities().GroupNameMax), release: rel.ID, version: rel.Version}
		return drv, ref, func(context.Context) ([]logGroup, error) { return []logGroup{g}, nil }, nil
	}
	versions := map[string]string{}
	list := func(ctx context.Context) ([]logGroup, error) {
		gs, err := drv.ListGroups(ctx, ref)
		if err != nil {
			return nil, err
		}
		out := make([]logGroup, 0, len(gs))
		for _, g := range gs {
			v, ok := versions[g.Release]
			if !ok {
				if r, err := b.st.GetRelease(ctx, g.Release); err == nil {
					v = r.Version
				}
				versions[g.Release] = v
			}
			out = append(out, logGroup{name: g.Name, release: g.Release, version: v})
		}
		return out, nil
	}
	return drv, ref, list, nil
}

// targetOf is the target of an environment of a project the server holds.
func (b *backend) targetOf(ctx context.Context, project, env string) (target.Target, error) {
	_, def, err := b.loadProject(ctx, project)
	if err != nil {
		return nil, err
	}
	e := def.Environment(env)
	if e == nil {
		return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownEnvironment, "project %s has no environment %q; it has %s", project, env, strings.Join(def.EnvironmentNames(), ", "))
	}
	drv, err := b.drivers.For(e.Target)
	if err != nil || drv == nil {
		return nil, b.noDriver(e)
	}
	return drv, nil
}

// CheckLogs implements api.Backend.
func (b *backend) CheckLogs(ctx context.Context, q apiwire.LogsQuery) error {
	_, _, _, err := b.logSource(ctx, q)
	return err
}

// Logs implements api.Backend: the lines of every instance of the groups,
// merged in time order; following, the lines as they come, of the groups
// and instances the service gains too, none twice (see follower).
func (b *backend) Logs(ctx context.Context, q apiwire.LogsQuery, emit func(apiwire.LogLine) error) error {
	drv, ref, list, err := b.logSource(ctx, q)
	if err != nil {
		return err
	}
	started := time.Now()
	groups, err := list(ctx)
	if err != nil {
		return err
	}
	backlog, err := readLogs(ctx, drv, ref, groups, q)
	if err != nil {
		return err
	}
	if !q.Follow {
		for _, l := range backlog {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	ctx, done := b.streamCtx(ctx)
	defer done()
	f := &follower{emit: emit, cuts: map[string]*logCut{}}
	for _, l := range backlog {
		if err := f.take(l, nil); err != nil {
			return err
		}
	}
	if len(backlog) > 0 && q.Tail > 0 && len(backlog) == q.Tail {
		f.floor = backlog[0].Time // older lines were cut by the tail
	}
	return f.run(ctx, drv, ref, q, groups, started, list)
}

// readLogs reads the lines of groups q selects, merged in time order, the
// last q.Tail of them.
func readLogs(ctx context.Context, drv target.Target, ref target.ServiceRef, groups []logGroup, q apiwire.LogsQuery) ([]apiwire.LogLine, error) {
	var out []apiwire.LogLine
	for _, g := range groups {
		err := drv.Logs(ctx, ref, target.LogQuery{Group: g.name, Instance: q.Instance, Tail: q.Tail, Since: q.Since, Filter: q.Filter}, func(l target.LogLine) error {
			out = append(out, wireLine(g, l))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	slices.SortStableFunc(out, func(a, b apiwire.LogLine) int { return a.Time.Compare(b.Time) })
	if q.Tail > 0 && len(out) > q.Tail {
		out = out[len(out)-q.Tail:]
	}
	return out, nil
}

func wireLine(g logGroup, l target.LogLine) apiwire.LogLine {
	return apiwire.LogLine{Time: l.Time, Instance: l.Instance, Group: g.name, Release: g.release, Version: g.version, Stream: l.Stream, Text: l.Text}
}

// follower emits the lines of followed streams once each. The backlog was
// read first; each group's stream then starts a little before the read
// (so no line falls between the two) and the lines it sends again are
// dropped by their instance's cut: the time of the last line emitted and
// how many lines carried exactly that time. A stream that failed (the agent
// restarted) is opened again the same way.
type follower struct {
	mu    sync.Mutex
	emit  func(apiwire.LogLine) error
	cuts  map[string]*logCut // by instance
	floor time.Time          // lines before it were left out by the tail
}

type logCut struct {
	at time.Time
	n  int // lines emitted at exactly at
}

// stream is one opened stream's progress past each instance's cut.
type stream struct {
	resent map[string]int  // lines at the cut seen again, by instance
	passed map[string]bool // the stream is past the instance's cut
}

// take emits l unless it was already emitted (s is the stream it came on;
// nil for the backlog).
func (f *follower) take(l apiwire.LogLine, s *stream) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.cuts[l.Instance]
	if s != nil && !s.passed[l.Instance] {
		if l.Time.Before(f.floor) {
			return nil
		}
		if c != nil {
			if l.Time.Before(c.at) {
				return nil
			}
			if l.Time.Equal(c.at) && s.resent[l.Instance] < c.n {
				s.resent[l.Instance]++
				return nil
			}
		}
		s.passed[l.Instance] = true
	}
	switch {
	case c == nil:
		f.cuts[l.Instance] = &logCut{at: l.Time, n: 1}
	case l.Time.After(c.at):
		c.at, c.n = l.Time, 1
	case l.Time.Equal(c.at):
		c.n++
	}
	if err := f.emit(l); err != nil {
		return fmt.Errorf("%w: %v", errEmit, err)
	}
	return nil
}

// run follows groups, and every group the service gains, until ctx ends or
// a line cannot be emitted (the client went away).
func (f *follower) run(ctx context.Context, drv target.Target, ref target.ServiceRef, q apiwire.LogsQuery, groups []logGroup, started time.Time, list func(context.Context) ([]logGroup, error)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	followed := map[string]bool{}
	follow := func(g logGroup, since time.Time) {
		followed[g.name] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				s := &stream{resent: map[string]int{}, passed: map[string]bool{}}
				opened := time.Now()
				err := drv.Logs(ctx, ref, target.LogQuery{Group: g.name, Instance: q.Instance, Since: since, Filter: q.Filter, Follow: true}, func(l target.LogLine) error {
					return f.take(wireLine(g, l), s)
				})
				if err == nil || ctx.Err() != nil {
					return // the group was deleted and read to its end, or the follow ended
				}
				if errors.Is(err, errEmit) {
					cancel(err)
					return
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(logRetry):
				}
				since = opened.Add(-time.Second)
			}
		}()
	}
	// A second of margin: a line time-stamped just before the backlog was
	// read may have reached the target's files just after.
	since := started.Add(-time.Second)
	if since.Before(q.Since) {
		since = q.Since
	}
	for _, g := range groups {
		follow(g, since)
	}
	if q.Release == "" {
		t := time.NewTicker(logGroupPoll)
	poll:
		for {
			select {
			case <-ctx.Done():
				break poll
			case <-t.C:
			}
			gs, err := list(ctx)
			if err != nil {
				continue // the target is away; the streams retry on their own
			}
			for _, g := range gs {
				if !followed[g.name] {
					follow(g, q.Since) // new: from its first line
				}
			}
		}
		t.Stop()
	}
	wg.Wait()
	if err := context.Cause(ctx); errors.Is(err, errEmit) {
		return err
	}
	return nil
}

var errEmit = errors.New("the client stopped reading")
