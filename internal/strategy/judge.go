package strategy

import (
	"fmt"
	"time"
)

// WindowStats are a group's proxy statistics over a recent window.
type WindowStats struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"` // 5xx answers and failed connections
	P50      time.Duration `json:"p50,omitempty"`
	P99      time.Duration `json:"p99"`
}

// ErrorRate is Errors/Requests, 0 without requests.
func (w WindowStats) ErrorRate() float64 {
	if w.Requests <= 0 {
		return 0
	}
	return float64(w.Errors) / float64(w.Requests)
}

// Merge combines the stats of several stable groups. The p99 of the union is
// not derivable from the parts; the largest is used, which only makes the
// canary look better relative to it, never worse.
func Merge(ws ...WindowStats) WindowStats {
	var out WindowStats
	for _, w := range ws {
		out.Requests += w.Requests
		out.Errors += w.Errors
		out.P99 = max(out.P99, w.P99)
	}
	return out
}

// Verdict is the outcome of one analysis.
type Verdict int

// The verdicts.
const (
	// Wait: the canary has served fewer than min_requests; look again later.
	Wait Verdict = iota
	Pass
	Fail
)

func (v Verdict) String() string {
	switch v {
	case Wait:
		return "wait"
	case Pass:
		return "pass"
	}
	return "fail"
}

// Judge compares the canary's window with the stable groups' and says why.
// The error-rate rule fails when canary rate − stable rate exceeds
// MaxErrorRateIncrease; the latency rule fails when canary p99 exceeds
// MaxLatencyP99Ratio × stable p99 and also exceeds it by more than
// LatencySlack. A ratio of 0 disables the latency rule; a stable group without
// requests has no p99 to compare with, so only the error rate is judged.
func Judge(a Analyze, canary, stable WindowStats) (Verdict, string) {
	if canary.Requests < int64(a.MinRequests) || canary.Requests == 0 {
		return Wait, fmt.Sprintf("canary served %d of the %d requests needed", canary.Requests, a.MinRequests)
	}
	cr, sr := canary.ErrorRate(), stable.ErrorRate()
	if inc := cr - sr; inc > a.MaxErrorRateIncrease+1e-12 {
		return Fail, fmt.Sprintf("canary error rate %.2f%% exceeds stable %.2f%% by %.2f points (allowed %.2f)",
			100*cr, 100*sr, 100*inc, 100*a.MaxErrorRateIncrease)
	}
	if a.MaxLatencyP99Ratio > 0 && stable.Requests > 0 && stable.P99 > 0 {
		ratio := float64(canary.P99) / float64(stable.P99)
		if ratio > a.MaxLatencyP99Ratio && canary.P99-stable.P99 > a.LatencySlack {
			return Fail, fmt.Sprintf("canary p99 %s is %.2f× stable p99 %s (allowed %.2f×)",
				canary.P99, ratio, stable.P99, a.MaxLatencyP99Ratio)
		}
	}
	return Pass, fmt.Sprintf("canary error rate %.2f%% (stable %.2f%%), p99 %s (stable %s) over %d requests",
		100*cr, 100*sr, canary.P99, stable.P99, canary.Requests)
}
