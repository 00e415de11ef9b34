package proxy

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Prometheus series of the proxy. Per-target handles are
// resolved once when a target enters the table (targetMetrics), so the
// request path never hashes label values.
type metrics struct {
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	reqBytes  *prometheus.CounterVec
	respBytes *prometheus.CounterVec
	retries   *prometheus.CounterVec
	ejections *prometheus.CounterVec
	rejected  *prometheus.CounterVec
	inflight  *prometheus.Desc
}

// targetLabels name a target's series. A preview route's requests count
// under its service (its group tells them apart).
var targetLabels = []string{"project", "environment", "service", "group", "target"}

func newMetrics(reg prometheus.Registerer, p *Proxy) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runway_proxy_requests_total",
			Help: "Requests forwarded to a target, by status class of the response sent to the client.",
		}, append(targetLabels[:len(targetLabels):len(targetLabels)], "code")),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "runway_proxy_request_duration_seconds",
			Help:    "Time from receiving a request to finishing its response, for forwarded requests.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, targetLabels),
		reqBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runway_proxy_request_bytes_total",
			Help: "Request body bytes forwarded to a target.",
		}, targetLabels),
		respBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runway_proxy_response_bytes_total",
			Help: "Response body bytes sent to clients from a target.",
		}, targetLabels),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runway_proxy_retries_total",
			Help: "Requests retried on another target after a failed connection to this one.",
		}, targetLabels),
		ejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runway_proxy_ejections_total",
			Help: "Times a target was ejected after consecutive connection failures.",
		}, targetLabels),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "runway_proxy_rejected_requests_total",
			Help: "Requests answered by the proxy itself: unknown_host (404), maintenance, no_target (503), upstream_error (502/504).",
		}, []string{"project", "environment", "service", "reason"}),
		inflight: prometheus.NewDesc("runway_proxy_in_flight_requests",
			"Requests in flight on a target (WebSockets and streams included).", targetLabels, nil),
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.reqBytes, m.respBytes, m.retries, m.ejections, m.rejected, inflightCollector{m.inflight, p}} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

type targetMetrics struct {
	byClass   [6]prometheus.Counter // index status/100; 0 for anything else
	duration  prometheus.Observer
	reqBytes  prometheus.Counter
	respBytes prometheus.Counter
	retries   prometheus.Counter
	ejections prometheus.Counter
}

var classNames = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

func (m *metrics) forTarget(l seriesKey) *targetMetrics {
	v := l.values()
	tm := &targetMetrics{
		duration:  m.duration.WithLabelValues(v...),
		reqBytes:  m.reqBytes.WithLabelValues(v...),
		respBytes: m.respBytes.WithLabelValues(v...),
		retries:   m.retries.WithLabelValues(v...),
		ejections: m.ejections.WithLabelValues(v...),
	}
	for i, c := range classNames {
		tm.byClass[i] = m.requests.WithLabelValues(append(v, c)...)
	}
	return tm
}

// forget drops a target's series once it left the table and went idle, so
// instance ids of past releases do not accumulate.
func (m *metrics) forget(k seriesKey) {
	l := prometheus.Labels{"project": k.project, "environment": k.env, "service": k.service, "group": k.group, "target": k.instance}
	for _, v := range []interface {
		DeletePartialMatch(prometheus.Labels) int
	}{m.requests, m.duration, m.reqBytes, m.respBytes, m.retries, m.ejections} {
		v.DeletePartialMatch(l)
	}
}

// seriesKey is the label values of a target's series, in targetLabels order.
type seriesKey struct{ project, env, service, group, instance string }

func (k seriesKey) values() []string {
	return []string{k.project, k.env, k.service, k.group, k.instance}
}

func statusClass(code int) int {
	if c := code / 100; c >= 1 && c <= 5 {
		return c
	}
	return 0
}

type inflightCollector struct {
	desc *prometheus.Desc
	p    *Proxy
}

func (c inflightCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c inflightCollector) Collect(ch chan<- prometheus.Metric) {
	// A retired target and its re-added successor share labels: sum them.
	sums := map[seriesKey]int64{}
	for _, t := range c.p.reg.allTargets() {
		sums[t.series()] += t.inflight.Load()
	}
	for k, n := range sums {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k.values()...)
	}
}
