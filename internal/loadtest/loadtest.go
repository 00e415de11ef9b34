// Package loadtest drives steady HTTP traffic at a service through the proxy
// and counts every request: the demo and the zero-downtime tests use it to
// prove that no request failed during a release.
package loadtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Options say where to send requests.
type Options struct {
	URL         string // such as http://127.0.0.1:8080/
	Host        string // Host header, such as hello.development.localhost
	Concurrency int    // clients sending back to back (default 4)
	// Interval between two requests of one client (0: back to back).
	Interval time.Duration
	Timeout  time.Duration // per request (default 10s)
	// Dial connects to the URL's address (nil: a plain TCP dial), such as
	// into a network namespace of the test's own.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Failure is one failed request.
type Failure struct {
	At     time.Time
	Status int // 0 for a transport error
	Err    string
}

// Result counts the requests of a run.
type Result struct {
	mu       sync.Mutex
	Sent     int64
	Failed   int64
	Versions map[string]int64 // answering version -> requests
	Failures []Failure        // the first 100
	lastVer  string
}

var versionRe = regexp.MustCompile(`from v(\S+)`)

func (r *Result) record(status int, body string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.Sent++
	if err != nil || status != http.StatusOK {
		r.Failed++
		if len(r.Failures) < 100 {
			f := Failure{At: time.Now(), Status: status}
			if err != nil {
				f.Err = err.Error()
			} else {
				f.Err = strings.TrimSpace(body)
			}
			r.Failures = append(r.Failures, f)
		}
		return
	}
	v := "unknown"
	if m := versionRe.FindStringSubmatch(body); m != nil {
		v = m[1]
	}
	r.Versions[v]++
	r.lastVer = v
}

// Snapshot returns the counts so far.
func (r *Result) Snapshot() (sent, failed int64, versions map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	versions = map[string]int64{}
	for k, v := range r.Versions {
		versions[k] = v
	}
	return r.Sent, r.Failed, versions
}

// String summarises the run: "sent 1234, failed 0, versions: v1 (600), v2 (634)".
func (r *Result) String() string {
	sent, failed, versions := r.Snapshot()
	keys := make([]string, 0, len(versions))
	for k := range versions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("v%s (%d)", k, versions[k])
	}
	return fmt.Sprintf("sent %d, failed %d, versions: %s", sent, failed, strings.Join(parts, ", "))
}

// Start sends traffic until ctx ends; Wait returns the result.
func Start(ctx context.Context, o Options) *Run {
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	dial := o.Dial
	if dial == nil {
		dial = (&net.Dialer{Timeout: 5 * time.Second}).DialContext
	}
	tr := &http.Transport{
		DialContext:         dial,
		MaxIdleConnsPerHost: o.Concurrency,
		DisableCompression:  true,
	}
	client := &http.Client{Transport: tr, Timeout: o.Timeout}
	run := &Run{Result: &Result{Versions: map[string]int64{}}, done: make(chan struct{})}
	var wg sync.WaitGroup
	for i := 0; i < o.Concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, err := http.NewRequest(http.MethodGet, o.URL, nil)
				if err != nil {
					run.Result.record(0, "", err)
					return
				}
				req.Host = o.Host
				resp, err := client.Do(req)
				if ctx.Err() != nil {
					// Stopping: a request cut short by the end of the run is not a failure.
					if resp != nil {
						resp.Body.Close()
					}
					return
				}
				if err != nil {
					run.Result.record(0, "", err)
				} else {
					b, rerr := io.ReadAll(resp.Body)
					resp.Body.Close()
					run.Result.record(resp.StatusCode, string(b), rerr)
				}
				if o.Interval > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(o.Interval):
					}
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		tr.CloseIdleConnections()
		close(run.done)
	}()
	return run
}

// Run is traffic in progress.
type Run struct {
	Result *Result
	done   chan struct{}
}

// Wait blocks until every client stopped (after ctx ended) and returns the result.
func (r *Run) Wait() *Result {
	<-r.done
	return r.Result
}
