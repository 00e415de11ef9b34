package agentapi

import "time"

// Problem is an RFC 9457 problem+json error body; its type is
// httpjson.TypeURI of the problem's slug, as the server's are.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail"`
	// Field is the JSON path of the request field at fault, when there is one.
	Field string `json:"field,omitempty"`
}

// Health is the body of GET /v1/health.
type Health struct {
	Status  string `json:"status"`
	AgentID string `json:"agent_id"`
	// PID is the agent's process id: `runway up` checks that what answers
	// on the agent's address is the agent it started.
	PID       int    `json:"pid"`
	Version   string `json:"version"`
	DataDir   string `json:"data_dir"`
	Groups    int    `json:"groups"`
	Instances int    `json:"instances"`
	// Generations are the services' generations and fences (generation.go).
	Generations []ServiceGeneration `json:"generations"`
}

// ServiceGeneration is one service's generation and fence, as GET /v1/health
// reports them.
type ServiceGeneration struct {
	Environment string `json:"environment"`
	Service     string `json:"service"`
	Generation  int64  `json:"generation"`
	Fence       int64  `json:"fence"`
}

// The statistics windows GET /v1/stats answers for: the proxy keeps one
// slot a second for MaxStatsWindow.
const (
	MinStatsWindow = time.Second
	MaxStatsWindow = 300 * time.Second
)

// WindowStats is a group's traffic over a recent window, as the proxy
// measures it and the agent API returns it.
type WindowStats struct {
	// Requests counts the responses finished in the window.
	Requests uint64 `json:"requests"`
	// Errors counts those that were 5xx or failed by the proxy.
	Errors uint64 `json:"errors"`
	// ErrorRate is Errors / Requests, 0 when Requests is 0.
	ErrorRate float64 `json:"error_rate"`
	// Latency percentiles: upper bounds of the histogram bucket holding the
	// percentile, so at most 25% above the true value. Zero when Requests is 0.
	P50 time.Duration `json:"p50_ns"`
	P90 time.Duration `json:"p90_ns"`
	P99 time.Duration `json:"p99_ns"`
}

// Counters are a service's monotonic totals since the agent's proxy
// started; a release snapshots them before and after to report what it served.
type Counters struct {
	// Served counts requests answered for the service, whatever the status.
	Served uint64 `json:"served"`
	// Failed counts requests the proxy itself failed: no healthy target
	// (503), connection errors to targets (502/504). Answers of the service,
	// 5xx included, and maintenance pages are not failures of the proxy.
	Failed uint64 `json:"failed"`
}
