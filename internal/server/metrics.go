package server

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
)

// metrics is the server's Prometheus exposition (GET /metrics), every
// series documented in docs/metrics.md (TestMetricsDocumented). Label sets
// are bounded: states and step kinds are the engine's closed sets, routes
// the API's patterns, codes HTTP status codes.
type metrics struct {
	reg        *prometheus.Registry
	stateDur   *prometheus.HistogramVec
	stepDur    *prometheus.HistogramVec
	lockWait   prometheus.Histogram
	lockHeld   prometheus.Counter
	apiReqs    *prometheus.CounterVec
	apiDur     *prometheus.HistogramVec
	alarmState *prometheus.GaugeVec
	notifies   *prometheus.CounterVec
}

// durationBuckets span a 5 ms lock to a 30 min canary.
var durationBuckets = []float64{.005, .025, .1, .5, 1, 2.5, 5, 10, 30, 60, 300, 900, 1800}

func newMetrics(st store.Store) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.stateDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runway_release_state_duration_seconds",
		Help: "Time releases spent in each engine state (on this server).", Buckets: durationBuckets}, []string{"state"})
	m.stepDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runway_release_step_duration_seconds",
		Help: "Time release steps took, by step kind.", Buckets: durationBuckets}, []string{"kind"})
	m.lockWait = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "runway_release_lock_wait_seconds",
		Help: "Time taking a service's release lock took.", Buckets: []float64{.001, .005, .025, .1, .5, 1, 5}})
	m.lockHeld = prometheus.NewCounter(prometheus.CounterOpts{Name: "runway_release_lock_conflicts_total",
		Help: "Releases refused because another release held the service's lock (LockExists)."})
	m.apiReqs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runway_api_requests_total",
		Help: "Requests to the server API by route pattern and status code."}, []string{"route", "code"})
	m.apiDur = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "runway_api_request_duration_seconds",
		Help:    "Time the server API took to answer, by route pattern (a followed stream counts until it ends).",
		Buckets: []float64{.001, .005, .025, .1, .5, 1, 5, 30}}, []string{"route"})
	m.alarmState = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "runway_alarms",
		Help: "Alarms of the services by state (OK, ALERT, NO_DATA), as of the last evaluation."}, []string{"state"})
	for _, s := range []string{"OK", "ALERT", "NO_DATA"} {
		m.alarmState.WithLabelValues(s)
	}
	m.notifies = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runway_notification_attempts_total",
		Help: "Webhook deliveries of alarm notifications attempted, by result (delivered, retried, failed: given up after 10 minutes)."}, []string{"result"})
	for _, r := range []string{"delivered", "retried", "failed"} {
		m.notifies.WithLabelValues(r)
	}
	m.reg.MustRegister(m.stateDur, m.stepDur, m.lockWait, m.lockHeld, m.apiReqs, m.apiDur, m.alarmState, m.notifies,
		&releaseCollector{st: st},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the exposition.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observeAPI is api.Options.Observe.
func (m *metrics) observeAPI(route string, status int, took time.Duration) {
	m.apiReqs.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.apiDur.WithLabelValues(route).Observe(took.Seconds())
}

// alarmStates sets runway_alarms from the watcher's last evaluation.
func (m *metrics) alarmStates(byState map[string]int) {
	for s, n := range byState {
		m.alarmState.WithLabelValues(s).Set(float64(n))
	}
}

// notified counts a notification attempt by result.
func (m *metrics) notified(result string) { m.notifies.WithLabelValues(result).Inc() }

// StateDone implements engine.Observer.
func (m *metrics) StateDone(s engine.State, took time.Duration) {
	m.stateDur.WithLabelValues(string(s)).Observe(took.Seconds())
}

// StepDone implements engine.Observer.
func (m *metrics) StepDone(kind strategy.Kind, took time.Duration) {
	m.stepDur.WithLabelValues(string(kind)).Observe(took.Seconds())
}

// LockTried implements engine.Observer.
func (m *metrics) LockTried(took time.Duration, held bool) {
	m.lockWait.Observe(took.Seconds())
	if held {
		m.lockHeld.Inc()
	}
}

// releaseCollector reads the releases by end state from the store at each
// scrape: releases are never deleted, so the counts only grow (counters),
// and they survive a restart of the server.
type releaseCollector struct{ st store.Store }

var (
	releasesDesc = prometheus.NewDesc("runway_releases_total",
		"Releases that ended, by end state (Success, FailureClean, FailureDirty).", []string{"state"}, nil)
	inProgressDesc = prometheus.NewDesc("runway_releases_in_progress",
		"Releases not yet ended.", nil, nil)
)

func (c *releaseCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- releasesDesc
	ch <- inProgressDesc
}

func (c *releaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, unfinished, err := c.st.CountReleases(ctx)
	if err != nil {
		return
	}
	for _, s := range []engine.State{engine.StateSuccess, engine.StateFailureClean, engine.StateFailureDirty} {
		ch <- prometheus.MustNewConstMetric(releasesDesc, prometheus.CounterValue, float64(counts[string(s)]), string(s))
	}
	ch <- prometheus.MustNewConstMetric(inProgressDesc, prometheus.GaugeValue, float64(unfinished))
}
