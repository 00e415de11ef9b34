package kubeproxy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/kubernetes"

	"github.com/runwayhq/runway/internal/agentapi"
	k8sdriver "github.com/runwayhq/runway/internal/driver/kubernetes"
	"github.com/runwayhq/runway/internal/proxy"
)

// Source is what a Publisher reads: a proxy's per-second statistics and
// its counters (*proxy.Proxy).
type Source interface {
	StatsSecond(sec int64) []proxy.GroupSecond
	RouteCounters() map[agentapi.RouteKey]agentapi.Counters
}

var _ Source = (*proxy.Proxy)(nil)

// Publisher publishes one proxy replica's statistics into its namespace:
// every StatsInterval, the seconds that ended (by a margin of one second)
// are added to StatsBucketWidth buckets, and the record is written to the
// replica's Lease (k8sdriver.StatsRecord; the driver sums the replicas).
//
// A replica that restarted (the same name, a new process) finds its
// Lease and carries its buckets and totals on, so its figures neither
// vanish nor count twice. Two processes alive under one name would write
// over each other: the one that finds its Lease written by the other
// (an update conflict) publishes under its name and process id instead.
type Publisher struct {
	Client    kubernetes.Interface
	Namespace string
	// Replica names the replica (the pod's name); the Lease is
	// k8sdriver.StatsLeasePrefix + Replica.
	Replica string
	Source  Source
	// Now is the proxy's clock (nil: time.Now).
	Now func() time.Time
	// Interval between publications (0: k8sdriver.StatsInterval).
	Interval time.Duration
	Log      *slog.Logger

	process string
	name    string // the Lease's name
	lease   *coordinationv1.Lease
	next    int64 // the first second not added yet
	buckets map[groupKey]map[int64]*bucket
	base    map[agentapi.RouteKey]offset // added to the proxy's totals: a previous process's
	written *k8sdriver.StatsRecord
	wroteAt time.Time
	gcAt    time.Time
	dropped bool
	final   bool // the last publication: the current second too
}

type groupKey struct {
	route agentapi.RouteKey
	group string
}

// offset is added to a service's served and failed totals.
type offset struct{ served, failed int64 }

type bucket struct {
	requests, errors int64
	latency          map[int64]int64
}

const width = int64(k8sdriver.StatsBucketWidth / time.Second)

func (p *Publisher) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// Run publishes until ctx ends, then once more (the last seconds), and
// returns. A publication that fails is logged and tried again next time.
func (p *Publisher) Run(ctx context.Context) error {
	if err := p.init(); err != nil {
		return err
	}
	interval := p.Interval
	if interval <= 0 {
		interval = k8sdriver.StatsInterval
	}
	for {
		if err := p.Publish(ctx); err != nil && ctx.Err() == nil {
			p.Log.Warn("kubeproxy: statistics not published; trying again", "lease", p.name, "err", err)
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			p.final = true // every second so far: nothing more is served
			if err := p.Publish(fctx); err != nil {
				p.Log.Warn("kubeproxy: last statistics not published", "lease", p.name, "err", err)
			}
			return nil
		case <-time.After(interval):
		}
	}
}

func (p *Publisher) init() error {
	if p.process != "" {
		return nil
	}
	if p.Log == nil {
		p.Log = slog.New(slog.DiscardHandler)
	}
	if p.Client == nil || p.Source == nil || p.Namespace == "" {
		return errors.New("kubeproxy: a statistics publisher needs a client, a source and a namespace")
	}
	if err := CheckReplica(p.Replica); err != nil {
		return err
	}
	name := k8sdriver.StatsLeasePrefix + p.Replica
	var b [8]byte
	_, _ = rand.Read(b[:])
	p.process = hex.EncodeToString(b[:])
	p.name = name
	p.buckets = map[groupKey]map[int64]*bucket{}
	p.base = map[agentapi.RouteKey]offset{}
	// The proxy's statistics reach back MaxStatsWindow: take all of it
	// (the proxy may have served before the publisher started).
	p.next = p.now().Unix() - int64(agentapi.MaxStatsWindow/time.Second) + 1
	return nil
}

// CheckReplica reports a replica name that cannot name its Lease.
func CheckReplica(replica string) error {
	if replica == "" || len(validation.IsDNS1123Subdomain(k8sdriver.StatsLeasePrefix+replica)) > 0 {
		return fmt.Errorf("kubeproxy: replica name %q: want a DNS name such as the pod's (lower-case letters, digits, '-' and '.', at most %d characters)", replica, 253-len(k8sdriver.StatsLeasePrefix))
	}
	return nil
}

// Publish adds the seconds that ended and writes the record when it
// changed (or StatsRenew passed).
func (p *Publisher) Publish(ctx context.Context) error {
	if err := p.init(); err != nil {
		return err
	}
	if p.lease == nil {
		if err := p.adopt(ctx); err != nil {
			return err
		}
	}
	p.collect()
	now := p.now()
	rec := p.record()
	if p.written != nil && now.Sub(p.wroteAt) < k8sdriver.StatsRenew && sameFigures(p.written, rec) {
		return p.gc(ctx, now)
	}
	if err := p.write(ctx, rec, now); err != nil {
		return err
	}
	return p.gc(ctx, now)
}

// adopt reads the replica's Lease: one a previous process of the replica
// wrote is carried on.
func (p *Publisher) adopt(ctx context.Context) error {
	leases := p.Client.CoordinationV1().Leases(p.Namespace)
	l, err := leases.Get(ctx, p.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		p.lease = &coordinationv1.Lease{}
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the statistics Lease %s: %w", p.name, err)
	}
	p.lease = l
	rec, err := k8sdriver.DecodeStats([]byte(l.Annotations[k8sdriver.AnnotStats]))
	if err != nil {
		p.Log.Warn("kubeproxy: the replica's previous statistics do not decode; starting afresh", "lease", p.name, "err", err)
		return nil
	}
	for _, s := range rec.Services {
		k := agentapi.RouteKey{Project: s.Project, Environment: s.Environment, Service: s.Service}
		p.base[k] = offset{s.Served, s.Failed}
	}
	p.add(rec, 1)
	// The seconds the previous process counted are in its buckets; this
	// process's proxy served nothing before it.
	p.next = max(p.next, rec.At)
	p.Log.Info("kubeproxy: carrying on the statistics of the replica's previous process", "lease", p.name, "process", rec.Process)
	return nil
}

// add adds sign times rec's buckets to the collected ones.
func (p *Publisher) add(rec *k8sdriver.StatsRecord, sign int64) {
	for _, s := range rec.Services {
		k := agentapi.RouteKey{Project: s.Project, Environment: s.Environment, Service: s.Service}
		for _, g := range s.Groups {
			for _, b := range g.Buckets {
				gk := groupKey{k, g.Group}
				nb := p.bucket(gk, b.Start)
				nb.requests += sign * b.Requests
				nb.errors += sign * b.Errors
				for _, lc := range b.Latency {
					if nb.latency[lc[0]] += sign * lc[1]; nb.latency[lc[0]] == 0 {
						delete(nb.latency, lc[0])
					}
				}
				if nb.requests == 0 {
					delete(p.buckets[gk], b.Start)
				}
			}
		}
	}
}

func (p *Publisher) bucket(k groupKey, start int64) *bucket {
	m := p.buckets[k]
	if m == nil {
		m = map[int64]*bucket{}
		p.buckets[k] = m
	}
	b := m[start]
	if b == nil {
		b = &bucket{latency: map[int64]int64{}}
		m[start] = b
	}
	return b
}

// collect adds the seconds that ended at least a second ago, once each,
// and forgets buckets older than the record keeps.
func (p *Publisher) collect() {
	now := p.now().Unix()
	oldest := now - int64(agentapi.MaxStatsWindow/time.Second) + 1
	p.next = max(p.next, oldest)
	upto := now - 1
	if p.final {
		upto = now + 1
	}
	for ; p.next < upto; p.next++ {
		for _, gs := range p.Source.StatsSecond(p.next) {
			b := p.bucket(groupKey{gs.Route, gs.Group}, p.next/width*width)
			b.requests += int64(gs.Requests)
			b.errors += int64(gs.Errors)
			for _, l := range gs.Latency {
				b.latency[int64(l.Bound)] += int64(l.N)
			}
		}
	}
	keep := (p.next/width - k8sdriver.StatsBuckets + 1) * width
	for k, m := range p.buckets {
		for start := range m {
			if start < keep {
				delete(m, start)
			}
		}
		if len(m) == 0 {
			delete(p.buckets, k)
		}
	}
}

// record is the record of what was collected, within StatsMaxBytes: the
// oldest buckets go first when it would be larger.
func (p *Publisher) record() *k8sdriver.StatsRecord {
	rec := &k8sdriver.StatsRecord{Version: k8sdriver.StatsVersion, Replica: p.Replica, Process: p.process,
		At: p.next, Width: int(width)}
	counters := p.Source.RouteCounters()
	services := map[agentapi.RouteKey]*k8sdriver.StatsService{}
	svc := func(k agentapi.RouteKey) *k8sdriver.StatsService {
		s := services[k]
		if s == nil {
			c, b := counters[k], p.base[k]
			s = &k8sdriver.StatsService{Project: k.Project, Environment: k.Environment, Service: k.Service,
				Served: max(0, int64(c.Served)+b.served), Failed: max(0, int64(c.Failed)+b.failed)}
			s.Failed = min(s.Failed, s.Served)
			services[k] = s
		}
		return s
	}
	for k := range counters {
		svc(k)
	}
	for k := range p.base {
		svc(k)
	}
	for k, m := range p.buckets {
		g := k8sdriver.StatsGroup{Group: k.group}
		starts := make([]int64, 0, len(m))
		for s := range m {
			starts = append(starts, s)
		}
		sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
		for _, s := range starts {
			b := m[s]
			if b.requests <= 0 || b.errors < 0 || b.errors > b.requests {
				continue // only after a conflict took figures away (never written)
			}
			sb := k8sdriver.StatsBucket{Start: s, Requests: b.requests, Errors: b.errors}
			for bound, n := range b.latency {
				if n > 0 {
					sb.Latency = append(sb.Latency, [2]int64{bound, n})
				}
			}
			sort.Slice(sb.Latency, func(i, j int) bool { return sb.Latency[i][0] < sb.Latency[j][0] })
			g.Buckets = append(g.Buckets, sb)
		}
		if len(g.Buckets) > 0 {
			s := svc(k.route)
			s.Groups = append(s.Groups, g)
		}
	}
	for _, s := range services {
		sort.Slice(s.Groups, func(i, j int) bool { return s.Groups[i].Group < s.Groups[j].Group })
		rec.Services = append(rec.Services, *s)
	}
	sort.Slice(rec.Services, func(i, j int) bool {
		a, b := rec.Services[i], rec.Services[j]
		if a.Project != b.Project {
			return a.Project < b.Project
		}
		if a.Environment != b.Environment {
			return a.Environment < b.Environment
		}
		return a.Service < b.Service
	})
	for {
		data, _ := json.Marshal(rec)
		if len(data) <= k8sdriver.StatsMaxBytes || !dropOldest(rec) {
			return rec
		}
		if !p.dropped {
			p.dropped = true
			p.Log.Warn("kubeproxy: statistics larger than a Lease holds; the oldest buckets are left out", "lease", p.name, "max_bytes", k8sdriver.StatsMaxBytes)
		}
	}
}

// dropOldest removes the oldest bucket of every group that has it; false
// when there is none.
func dropOldest(rec *k8sdriver.StatsRecord) bool {
	oldest := int64(-1)
	for _, s := range rec.Services {
		for _, g := range s.Groups {
			if len(g.Buckets) > 0 && (oldest < 0 || g.Buckets[0].Start < oldest) {
				oldest = g.Buckets[0].Start
			}
		}
	}
	if oldest < 0 {
		return false
	}
	for i := range rec.Services {
		gs := rec.Services[i].Groups[:0]
		for _, g := range rec.Services[i].Groups {
			if len(g.Buckets) > 0 && g.Buckets[0].Start == oldest {
				g.Buckets = g.Buckets[1:]
			}
			if len(g.Buckets) > 0 {
				gs = append(gs, g)
			}
		}
		rec.Services[i].Groups = gs
	}
	return true
}

// sameFigures: a and b differ in their time alone.
func sameFigures(a, b *k8sdriver.StatsRecord) bool {
	x, y := *a, *b
	x.At, y.At = 0, 0
	return reflect.DeepEqual(x, y)
}

func (p *Publisher) write(ctx context.Context, rec *k8sdriver.StatsRecord, now time.Time) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	leases := p.Client.CoordinationV1().Leases(p.Namespace)
	l := p.lease.DeepCopy()
	l.Name, l.Namespace = p.name, p.Namespace
	if l.Labels == nil {
		l.Labels = map[string]string{}
	}
	l.Labels[k8sdriver.LabelManaged] = k8sdriver.ManagedBy
	l.Labels[k8sdriver.LabelStats] = "proxy"
	if l.Annotations == nil {
		l.Annotations = map[string]string{}
	}
	l.Annotations[k8sdriver.AnnotStats] = string(data)
	holder := p.Replica
	dur := int32(k8sdriver.StatsLeaseDuration / time.Second)
	renew := metav1.NewMicroTime(now)
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime = &holder, &dur, &renew
	if l.Spec.AcquireTime == nil || p.written == nil {
		l.Spec.AcquireTime = &renew
	}
	var out *coordinationv1.Lease
	if l.ResourceVersion == "" {
		out, err = leases.Create(ctx, l, metav1.CreateOptions{})
	} else {
		out, err = leases.Update(ctx, l, metav1.UpdateOptions{})
	}
	switch {
	case apierrors.IsNotFound(err):
		// Deleted meanwhile (by hand, or as expired while this replica
		// was stopped for StatsExpiry): created again.
		p.lease = &coordinationv1.Lease{}
		return p.write(ctx, rec, now)
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		return p.conflict(ctx)
	case err != nil:
		return fmt.Errorf("write the statistics Lease %s: %w", p.name, err)
	}
	p.lease, p.written, p.wroteAt = out, rec, now
	return nil
}

// conflict: the Lease changed since this process read or wrote it. When
// another process wrote it, that process holds the name and what this one
// had written there: this one goes on under a name of its own with the
// rest (what it collected since, what it counts from now on).
func (p *Publisher) conflict(ctx context.Context) error {
	l, err := p.Client.CoordinationV1().Leases(p.Namespace).Get(ctx, p.name, metav1.GetOptions{})
	if err != nil {
		p.lease = nil // read it again next time
		return fmt.Errorf("read the statistics Lease %s again: %w", p.name, err)
	}
	rec, derr := k8sdriver.DecodeStats([]byte(l.Annotations[k8sdriver.AnnotStats]))
	if derr == nil && rec.Process != p.process {
		old := p.name
		p.Replica = p.Replica + "-" + p.process
		p.name = k8sdriver.StatsLeasePrefix + p.Replica
		if w := p.written; w != nil {
			p.add(w, -1)
			for _, s := range w.Services {
				k := agentapi.RouteKey{Project: s.Project, Environment: s.Environment, Service: s.Service}
				b := p.base[k]
				p.base[k] = offset{b.served - s.Served, b.failed - s.Failed}
			}
		}
		p.lease, p.written = &coordinationv1.Lease{}, nil
		p.Log.Error("kubeproxy: another process publishes statistics under this replica's name; publishing under a name of this process", "lease", old, "other_process", rec.Process, "now", p.name)
		return nil
	}
	p.lease = l
	return nil
}

// gc deletes, about once a minute, the Leases of replicas not renewed for
// StatsExpiry.
func (p *Publisher) gc(ctx context.Context, now time.Time) error {
	if now.Sub(p.gcAt) < time.Minute {
		return nil
	}
	p.gcAt = now
	leases := p.Client.CoordinationV1().Leases(p.Namespace)
	list, err := leases.List(ctx, metav1.ListOptions{LabelSelector: k8sdriver.LabelStats})
	if err != nil {
		return fmt.Errorf("list the statistics Leases: %w", err)
	}
	for _, l := range list.Items {
		if l.Name == p.name {
			continue
		}
		last := l.CreationTimestamp.Time
		if l.Spec.RenewTime != nil {
			last = l.Spec.RenewTime.Time
		}
		if now.Sub(last) < k8sdriver.StatsExpiry {
			continue
		}
		rv := l.ResourceVersion
		err := leases.Delete(ctx, l.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return fmt.Errorf("delete the expired statistics Lease %s: %w", l.Name, err)
		}
		p.Log.Info("kubeproxy: deleted the statistics of a replica gone since", "lease", l.Name, "renewed", last)
	}
	return nil
}
