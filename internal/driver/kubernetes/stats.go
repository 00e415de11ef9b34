package kubernetes

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// Traffic "runway" measures every request in the in-cluster proxy. Each
// proxy replica publishes what it measured into the namespace, through
// the API (the server may sit outside the cluster, and needs no network
// path to the proxy's pods): one coordination Lease per replica, named
// StatsLeasePrefix + the replica's name (its pod's), holding a
// StatsRecord in the annotation AnnotStats. The record keeps the
// replica's traffic per service and group in StatsBucketWidth-wide buckets of
// wall-clock time (the last StatsBuckets of them) and the replica's
// served and failed totals. The driver lists the Leases and sums the
// replicas: WindowStats over the buckets that overlap the window,
// Counters over the totals. docs/kubernetes.md ("Statistics") gives the
// sizes, the write rate and what a window means.

// The published form's constants. A window of StatsWindowMax needs
// StatsWindowMax/StatsBucketWidth buckets plus the one it starts in; one more
// covers the seconds a replica has not published yet.
const (
	// StatsLeasePrefix starts the name of a replica's Lease.
	StatsLeasePrefix = "runway-stats-"
	// LabelStats marks the statistics Leases (its value: "proxy").
	LabelStats = "runway.dev/stats"
	// AnnotStats is the Lease's annotation holding the StatsRecord (JSON).
	AnnotStats = "runway.dev/stats"
	// StatsVersion is the version of StatsRecord this code writes and reads.
	StatsVersion = 1
	// StatsBucketWidth is the width of a bucket, aligned on Unix time.
	StatsBucketWidth = 5 * time.Second
	// StatsBuckets is how many buckets a replica keeps per group.
	StatsBuckets = 62
	// StatsMaxBytes bounds a record (a Lease's annotations may hold 256
	// KiB): a replica that would write more drops its oldest buckets.
	StatsMaxBytes = 200 << 10
	// StatsInterval is how often a replica publishes while its figures
	// change; StatsRenew how often at least (its Lease's renewTime).
	StatsInterval = 2 * time.Second
	StatsRenew    = 10 * time.Second
	// StatsLeaseDuration is the Lease's leaseDurationSeconds: a replica
	// not renewed for that long is not running (its buckets still count
	// the traffic it served).
	StatsLeaseDuration = 30 * time.Second
	// StatsExpiry: the replicas delete a Lease not renewed for this long
	// (its buckets are older than any window; its totals leave Counters).
	StatsExpiry = 15 * time.Minute
	// StatsWindowMin and StatsWindowMax are the windows WindowStats
	// measures. A replica's figures are up to StatsInterval plus two
	// seconds old, and a window is counted in whole buckets (up to one
	// bucket longer): over 30 s or more that is within a sixth of it.
	StatsWindowMin = 30 * time.Second
	StatsWindowMax = 300 * time.Second
)

// The bounds of a record's numbers: a decoded record's sums cannot
// overflow.
const (
	maxStatsCount    = 1 << 40 // requests of one bucket
	maxStatsTotal    = 1 << 53 // a service's totals
	maxStatsServices = 1000
	maxStatsGroups   = 64
	maxStatsLatency  = 128
)

// StatsRecord is what one proxy replica publishes.
type StatsRecord struct {
	// Version is StatsVersion.
	Version int `json:"v"`
	// Replica names the replica (its Lease is StatsLeasePrefix+Replica);
	// Process is a random id of the process writing it, so that two
	// processes never write under one name.
	Replica string `json:"replica"`
	Process string `json:"process"`
	// At is a Unix second: the record counts every second before it.
	At int64 `json:"at"`
	// Width is the bucket width in seconds (StatsBucketWidth).
	Width    int            `json:"width"`
	Services []StatsService `json:"services"`
}

// StatsService is one service's figures in a record.
type StatsService struct {
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Service     string `json:"service"`
	// Served and Failed are the replica's totals since it started
	// (target.Counters).
	Served int64        `json:"served"`
	Failed int64        `json:"failed"`
	Groups []StatsGroup `json:"groups"`
}

// StatsGroup is one group's buckets, oldest first.
type StatsGroup struct {
	Group   string        `json:"group"`
	Buckets []StatsBucket `json:"buckets"`
}

// StatsBucket is one bucket of a group.
type StatsBucket struct {
	// Start is the bucket's first Unix second, a multiple of Width.
	Start    int64 `json:"t"`
	Requests int64 `json:"n"`
	Errors   int64 `json:"e"`
	// Latency counts the requests by latency: [bound in ns, count] pairs,
	// bounds ascending, counts adding up to Requests. A request counted at
	// bound b took at most b (and more than the previous bound).
	Latency [][2]int64 `json:"l"`
}

// DecodeStats decodes and checks a published record: one JSON value,
// unknown fields refused, every number within its bounds, so that what a
// replica wrote (cluster data: untrusted) cannot mislead the sums.
func DecodeStats(data []byte) (*StatsRecord, error) {
	if len(data) > 256<<10 {
		return nil, fmt.Errorf("statistics record of %d bytes: at most %d", len(data), 256<<10)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var r StatsRecord
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("statistics record: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("statistics record: data after the JSON value")
	}
	if err := r.check(); err != nil {
		return nil, fmt.Errorf("statistics record: %w", err)
	}
	return &r, nil
}

func (r *StatsRecord) check() error {
	width := int64(StatsBucketWidth / time.Second)
	switch {
	case r.Version != StatsVersion:
		return fmt.Errorf("format version %d: this Runway reads version %d (run the proxy and the server of one release)", r.Version, StatsVersion)
	case int64(r.Width) != width:
		return fmt.Errorf("buckets of %d s: want %d", r.Width, width)
	case len(validation.IsDNS1123Subdomain(StatsLeasePrefix+r.Replica)) > 0:
		return fmt.Errorf("replica %q: want a DNS name", r.Replica)
	case len(r.Process) == 0 || len(r.Process) > 64:
		return errors.New("process: want 1 to 64 characters")
	case r.At < 0 || r.At > math.MaxInt64/4:
		return fmt.Errorf("at %d: out of range", r.At)
	case len(r.Services) > maxStatsServices:
		return fmt.Errorf("%d services: at most %d", len(r.Services), maxStatsServices)
	}
	for i, s := range r.Services {
		switch {
		case s.Service == "" || s.Environment == "":
			return fmt.Errorf("services[%d]: service and environment are required", i)
		case s.Served < 0 || s.Served > maxStatsTotal || s.Failed < 0 || s.Failed > s.Served:
			return fmt.Errorf("services[%d]: served %d, failed %d: want 0 <= failed <= served <= %d", i, s.Served, s.Failed, int64(maxStatsTotal))
		case len(s.Groups) > maxStatsGroups:
			return fmt.Errorf("services[%d]: %d groups: at most %d", i, len(s.Groups), maxStatsGroups)
		}
		for j, g := range s.Groups {
			if g.Group == "" || len(g.Group) > 253 {
				return fmt.Errorf("services[%d].groups[%d]: group name of %d characters", i, j, len(g.Group))
			}
			if len(g.Buckets) > StatsBuckets {
				return fmt.Errorf("services[%d].groups[%d]: %d buckets: at most %d", i, j, len(g.Buckets), StatsBuckets)
			}
			prev := int64(-1)
			for k, b := range g.Buckets {
				if err := b.check(width, prev, r.At); err != nil {
					return fmt.Errorf("services[%d].groups[%d].buckets[%d]: %w", i, j, k, err)
				}
				prev = b.Start
			}
		}
	}
	return nil
}

func (b StatsBucket) check(width, prev, at int64) error {
	switch {
	case b.Start < 0 || b.Start%width != 0:
		return fmt.Errorf("start %d: want a multiple of %d", b.Start, width)
	case b.Start <= prev:
		return fmt.Errorf("start %d: buckets go oldest first, one per start", b.Start)
	case b.Start > at:
		return fmt.Errorf("start %d: after the record's time %d", b.Start, at)
	case b.Requests < 1 || b.Requests > maxStatsCount:
		return fmt.Errorf("%d requests: want 1 to %d", b.Requests, int64(maxStatsCount))
	case b.Errors < 0 || b.Errors > b.Requests:
		return fmt.Errorf("%d errors of %d requests", b.Errors, b.Requests)
	case len(b.Latency) == 0 || len(b.Latency) > maxStatsLatency:
		return fmt.Errorf("%d latency counts: want 1 to %d", len(b.Latency), maxStatsLatency)
	}
	var sum, bound int64
	for _, l := range b.Latency {
		if l[0] <= bound || l[1] < 1 || l[1] > b.Requests {
			return fmt.Errorf("latency count %v: want ascending positive bounds and counts of 1 to %d", l, b.Requests)
		}
		bound = l[0]
		sum += l[1]
	}
	if sum != b.Requests {
		return fmt.Errorf("latency counts add up to %d, requests are %d", sum, b.Requests)
	}
	return nil
}

// Window sums the record's buckets of ref's group that overlap the window
// ending at now; it adds them to into (latency counts by bound).
func (r *StatsRecord) window(ref target.ServiceRef, group string, from, now int64, into *windowSum) {
	width := int64(r.Width)
	for _, s := range r.Services {
		if s.Project != ref.Project || s.Environment != ref.Environment || s.Service != ref.Service {
			continue
		}
		for _, g := range s.Groups {
			if g.Group != group {
				continue
			}
			for _, b := range g.Buckets {
				if b.Start+width <= from || b.Start > now {
					continue
				}
				into.requests += b.Requests
				into.errors += b.Errors
				for _, l := range b.Latency {
					into.latency[l[0]] += l[1]
				}
			}
		}
	}
}

type windowSum struct {
	requests, errors int64
	latency          map[int64]int64
}

// stats are the window's figures; percentiles as the proxy reports them
// (the bound of the bucket holding the rank).
func (w *windowSum) stats() strategy.WindowStats {
	ws := strategy.WindowStats{Requests: w.requests, Errors: w.errors}
	if w.requests == 0 {
		return ws
	}
	bounds := make([]int64, 0, len(w.latency))
	var total int64
	for b, n := range w.latency {
		bounds = append(bounds, b)
		total += n
	}
	sort.Slice(bounds, func(i, j int) bool { return bounds[i] < bounds[j] })
	pct := func(q float64) time.Duration {
		rank := int64(math.Ceil(q * float64(total)))
		var acc int64
		for _, b := range bounds {
			acc += w.latency[b]
			if acc >= rank {
				return time.Duration(b)
			}
		}
		return time.Duration(bounds[len(bounds)-1])
	}
	ws.P50, ws.P99 = pct(0.50), pct(0.99)
	return ws
}

// leaseLister lists a namespace's Leases (the typed client's).
type leaseLister interface {
	List(ctx context.Context, opts metav1.ListOptions) (*coordinationv1.LeaseList, error)
}

// StatsRecords reads every replica's record in namespace ns (by Lease
// name). A record that does not decode is an error naming its Lease: its
// figures cannot be left out silently.
func StatsRecords(ctx context.Context, c leaseLister, ns string) (map[string]*StatsRecord, error) {
	leases, err := c.List(ctx, metav1.ListOptions{LabelSelector: LabelStats})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: list the proxy's statistics (Leases %s*): %w", StatsLeasePrefix, err)
	}
	out := map[string]*StatsRecord{}
	for _, l := range leases.Items {
		v, ok := l.Annotations[AnnotStats]
		if !ok {
			continue
		}
		r, err := DecodeStats([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("kubernetes: Lease %s/%s: %w", ns, l.Name, err)
		}
		out[l.Name] = r
	}
	return out, nil
}

func (d *Driver) now() time.Time {
	if d.opts.Now != nil {
		return d.opts.Now()
	}
	return time.Now()
}

// WindowStats sums the proxy replicas' buckets of the group that overlap
// the window (traffic "runway"; a Service counts nothing).
func (d *Driver) WindowStats(ctx context.Context, ref target.ServiceRef, group string, window time.Duration) (strategy.WindowStats, error) {
	c, cerr := d.client(ref)
	if cerr != nil {
		return strategy.WindowStats{}, cerr
	}
	if d.opts.Traffic != config.TrafficRunway {
		return strategy.WindowStats{}, fmt.Errorf("kubernetes: per-group statistics need traffic \"runway\" and its in-cluster proxy: %w", target.ErrUnsupported)
	}
	if window < StatsWindowMin || window > StatsWindowMax {
		return strategy.WindowStats{}, fmt.Errorf("kubernetes: statistics window %s: the in-cluster proxy's figures cover %s to %s", window, StatsWindowMin, StatsWindowMax)
	}
	ns := d.Namespace(ref)
	recs, err := StatsRecords(ctx, c.CoordinationV1().Leases(ns), ns)
	if err != nil {
		return strategy.WindowStats{}, err
	}
	now := d.now()
	from := now.Add(-window).Unix()
	sum := &windowSum{latency: map[int64]int64{}}
	for _, r := range recs {
		r.window(ref, group, from, now.Unix(), sum)
	}
	return sum.stats(), nil
}

// Counters sums the replicas' totals of the service (a replica's Lease
// keeps them until StatsExpiry after it stopped).
func (d *Driver) Counters(ctx context.Context, ref target.ServiceRef) (target.Counters, error) {
	if d.opts.Traffic != config.TrafficRunway {
		return target.Counters{}, fmt.Errorf("kubernetes: request totals need the in-cluster proxy: %w", target.ErrUnsupported)
	}
	kc, cerr := d.client(ref)
	if cerr != nil {
		return target.Counters{}, cerr
	}
	ns := d.Namespace(ref)
	recs, err := StatsRecords(ctx, kc.CoordinationV1().Leases(ns), ns)
	if err != nil {
		return target.Counters{}, err
	}
	var c target.Counters
	for _, r := range recs {
		for _, s := range r.Services {
			if s.Project == ref.Project && s.Environment == ref.Environment && s.Service == ref.Service {
				c.Served += s.Served
				c.Failed += s.Failed
			}
		}
	}
	return c, nil
}
