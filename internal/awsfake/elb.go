package awsfake

import (
	"context"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

type loadBalancer struct{ arn, name, id string }

type listener struct {
	arn  string
	lb   *loadBalancer
	port int
}

type rule struct {
	arn, listener string
	priority      int
	hosts         []string
	conditions    []any
	actions       []any
	forward       []weighted
}

type weighted struct {
	arn    string
	weight int
}

type targetGroup struct {
	arn, name, id, vpc, protocol, healthPath string
	port, interval, healthy, unhealthy       int
	timeout                                  int
	deregDelay                               int
	in                                       map[string]any
	targets                                  map[string]*target // by IP
	rr                                       int
}

type target struct {
	id               string
	port             int
	state, reason    string
	task             *task
	since, lastCheck time.Time
	drainingSince    time.Time
	passes, fails    int
	inflight         int
	ctx              context.Context
	cancel           context.CancelFunc
}

func (tg *targetGroup) register(ip string, port int, t *task, now time.Time) {
	if tg.targets[ip] != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	tg.targets[ip] = &target{id: ip, port: port, state: "initial", reason: "Elb.RegistrationInProgress", task: t, since: now, ctx: ctx, cancel: cancel}
}

// ips are the addresses of the group's targets, sorted.
func (tg *targetGroup) ips() []string {
	ips := make([]string, 0, len(tg.targets))
	for ip := range tg.targets {
		ips = append(ips, ip)
	}
	sort.Strings(ips)
	return ips
}

func (tg *targetGroup) targetOf(t *task) *target {
	if tg == nil {
		return nil
	}
	if tt := tg.targets[t.ip]; tt != nil && tt.task == t {
		return tt
	}
	return nil
}

// minute is what the load balancer measured of one target group in one
// minute: the figures CloudWatch's AWS/ApplicationELB namespace serves.
type minute struct {
	requests, errors5xx int64
	latencies           []float64 // seconds
}

// albPlane is the load balancer's data plane: one HTTP listener on
// loopback that routes by host header through the listener's rules (by
// priority), chooses a target group by weight and a target round robin
// among the healthy ones (all of them when none is healthy: fail open), and
// forwards to the task's container. A deregistering target gets no new
// request; its requests in flight are cut when the deregistration delay
// passes.
type albPlane struct {
	f   *Fake
	ln  net.Listener
	srv *http.Server
	wg  sync.WaitGroup
	rnd *rand.Rand
}

func startALB(f *Fake) (*albPlane, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	a := &albPlane{f: f, ln: ln, rnd: rand.New(rand.NewPCG(1, 2))}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	a.wg.Add(1)
	go func() { defer a.wg.Done(); _ = a.srv.Serve(ln) }()
	return a, nil
}

func (a *albPlane) addr() string { return a.ln.Addr().String() }

func (a *albPlane) close() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.srv.Shutdown(ctx); err != nil {
		_ = a.srv.Close()
	}
	a.wg.Wait()
}

func (a *albPlane) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	host := strings.ToLower(r.Host)
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	a.f.mu.Lock()
	st := a.f.st
	tg, tt, status := a.pick(st, host)
	if tt != nil {
		tt.inflight++
	}
	a.f.mu.Unlock()
	if tt == nil {
		http.Error(w, http.StatusText(status), status)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	stop := context.AfterFunc(tt.ctx, cancel)
	rec := &statusWriter{ResponseWriter: w, code: 200}
	tt.task.proc.Handler().ServeHTTP(rec, r.WithContext(ctx))
	stop()
	cancel()
	a.f.mu.Lock()
	tt.inflight--
	m := st.metrics[tg.arn]
	if m == nil {
		m = map[int64]*minute{}
		st.metrics[tg.arn] = m
	}
	k := start.Unix() / 60
	b := m[k]
	if b == nil {
		b = &minute{}
		m[k] = b
	}
	b.requests++
	if rec.code >= 500 {
		b.errors5xx++
	}
	if len(b.latencies) < 10000 {
		b.latencies = append(b.latencies, time.Since(start).Seconds())
	}
	a.f.mu.Unlock()
}

// pick chooses the target group and target of a request to host.
func (a *albPlane) pick(st *state, host string) (*targetGroup, *target, int) {
	var rules []*rule
	for _, r := range st.rules {
		for _, h := range r.hosts {
			if h == host {
				rules = append(rules, r)
			}
		}
	}
	if len(rules) == 0 {
		return nil, nil, http.StatusNotFound // the listener's default action
	}
	sort.Slice(rules, func(i, j int) bool { return rules[i].priority < rules[j].priority })
	ru := rules[0]
	total := 0
	for _, w := range ru.forward {
		total += w.weight
	}
	if total == 0 {
		return nil, nil, http.StatusServiceUnavailable
	}
	n := a.rnd.IntN(total)
	var tg *targetGroup
	for _, w := range ru.forward {
		if n < w.weight {
			tg = st.tgs[w.arn]
			break
		}
		n -= w.weight
	}
	if tg == nil {
		return nil, nil, http.StatusServiceUnavailable
	}
	var healthy, all []*target
	for _, ip := range tg.ips() {
		tt := tg.targets[ip]
		if tt.state == "draining" || tt.task.proc == nil || tt.task.proc.Handler() == nil {
			continue
		}
		all = append(all, tt)
		if tt.state == "healthy" {
			healthy = append(healthy, tt)
		}
	}
	if len(healthy) == 0 {
		healthy = all
	}
	if len(healthy) == 0 {
		return tg, nil, http.StatusServiceUnavailable
	}
	tg.rr++
	return tg, healthy[tg.rr%len(healthy)], 0
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(c int) { s.code = c; s.ResponseWriter.WriteHeader(c) }
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}
