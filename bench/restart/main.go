// Command restart measures what an agent restart costs the traffic of the
// services behind it: it starts `runway up` (server and agent as real
// processes, the proxy's sockets held by up), deploys examples/hello with 2
// instances, keeps a steady load through the proxy, and restarts the agent
// child ROUNDS times each way — SIGTERM (graceful: the agent stops
// accepting, finishes its requests, up starts a new one) and SIGKILL (a
// crash) — counting per restart the requests that failed, split into
// refused connections, other transport errors and non-200 answers, and the
// slowest request (the wait in the kernel's backlog). run.sh builds what it
// needs and runs it; it prints a Markdown table.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	var o options
	flag.StringVar(&o.runway, "runway", "bin/runway", "the runway binary")
	flag.StringVar(&o.hello, "hello", "examples/hello/bin/hello", "the examples/hello binary")
	flag.IntVar(&o.rounds, "rounds", 5, "restarts measured per kind (SIGTERM, SIGKILL); each takes about 11 s")
	flag.IntVar(&o.clients, "clients", 4, "load clients, each sending requests back to back")
	flag.DurationVar(&o.interval, "interval", 5*time.Millisecond, "pause of each client between two requests")
	flag.BoolVar(&o.keepAlive, "keepalive", true, "reuse connections (false: a new connection per request, so net/http never resends one)")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/restart:", err)
		os.Exit(1)
	}
}

// upResetAfter is a little more than the uptime after which runway up's
// restart delay goes back to its initial 0.5 s.
const upResetAfter = 10500 * time.Millisecond

type options struct {
	runway, hello string
	rounds        int
	clients       int
	interval      time.Duration
	keepAlive     bool
}

// window counts the requests that ended in one measurement window.
type window struct {
	mu                               sync.Mutex
	sent, refused, transport, non200 int
	slowest                          time.Duration
	firstErr                         string
}

func (w *window) record(d time.Duration, status int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.sent++
	w.slowest = max(w.slowest, d)
	switch {
	case err != nil && strings.Contains(err.Error(), "connection refused"):
		w.refused++
	case err != nil:
		w.transport++
	case status != http.StatusOK:
		w.non200++
	default:
		return
	}
	if w.firstErr == "" {
		if err != nil {
			w.firstErr = err.Error()
		} else {
			w.firstErr = fmt.Sprintf("status %d", status)
		}
	}
}

func (w *window) failed() int { return w.refused + w.transport + w.non200 }

func run(o options) error {
	for _, p := range []*string{&o.runway, &o.hello} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	tmp, err := os.MkdirTemp("", "bench-restart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	addrs, err := freeAddrs(4)
	if err != nil {
		return err
	}
	serverAddr, agentAddr, httpAddr, httpsAddr := addrs[0], addrs[1], addrs[2], addrs[3]
	logf, err := os.Create(filepath.Join(tmp, "up.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	up := exec.Command(o.runway, "up", "--data-dir", filepath.Join(tmp, ".runway"), "--listen", serverAddr,
		"--agent-listen", agentAddr, "--http", httpAddr, "--https", httpsAddr)
	up.Dir = tmp
	up.Stdout, up.Stderr = logf, logf
	if err := up.Start(); err != nil {
		return err
	}
	upDone := make(chan error, 1)
	go func() { upDone <- up.Wait() }()
	defer func() {
		up.Process.Signal(syscall.SIGINT)
		select {
		case <-upDone:
		case <-time.After(2 * time.Minute):
			up.Process.Kill()
		}
	}()
	fail := func(err error) error {
		b, _ := os.ReadFile(logf.Name())
		return fmt.Errorf("%w\nrunway up's log:\n%s", err, b)
	}
	if err := waitUntil(60*time.Second, "runway up", func() bool {
		b, _ := os.ReadFile(logf.Name())
		return strings.Contains(string(b), "Runway is up")
	}, upDone); err != nil {
		return fail(err)
	}
	if err := deploy(o, tmp, serverAddr); err != nil {
		return fail(err)
	}

	var cur atomic.Pointer[window]
	cur.Store(&window{})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: o.clients, DisableCompression: true, DisableKeepAlives: !o.keepAlive}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+httpAddr+"/", nil)
				req.Host = "hello.staging.localhost"
				start := time.Now()
				resp, err := hc.Do(req)
				status := 0
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					status = resp.StatusCode
				}
				if ctx.Err() != nil {
					return
				}
				cur.Load().record(time.Since(start), status, err)
				select {
				case <-ctx.Done():
				case <-time.After(o.interval):
				}
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	// A window of steady traffic first: the baseline must be 0 failed.
	if err := pause(2 * time.Second); err != nil {
		return err
	}
	base := cur.Swap(&window{})
	type result struct {
		kind    string
		windows []*window
		restart []time.Duration
	}
	results := []*result{{kind: "graceful (SIGTERM)"}, {kind: "kill -9 (SIGKILL)"}}
	var back time.Time
	for i := range o.rounds * 2 {
		// up's restart delay grows while a child keeps exiting and goes back
		// to 0.5 s once it stayed up 10 s: every round starts from there.
		if !back.IsZero() {
			if err := pause(time.Until(back.Add(upResetAfter))); err != nil {
				return err
			}
		}
		r := results[i%2]
		sig := syscall.SIGTERM
		if i%2 == 1 {
			sig = syscall.SIGKILL
		}
		old := healthPID("http://" + agentAddr + "/v1/health")
		if old == 0 {
			return fail(errors.New("the agent does not answer its health check"))
		}
		cur.Swap(&window{})
		t0 := time.Now()
		if err := syscall.Kill(old, sig); err != nil {
			return err
		}
		if err := waitUntil(30*time.Second, "the agent's restart", func() bool {
			p := healthPID("http://" + agentAddr + "/v1/health")
			return p != 0 && p != old
		}, upDone); err != nil {
			return fail(err)
		}
		back = time.Now()
		r.restart = append(r.restart, back.Sub(t0))
		// Traffic through the new agent before the window closes.
		if err := pause(time.Second); err != nil {
			return err
		}
		r.windows = append(r.windows, cur.Swap(&window{}))
	}
	cancel()
	wg.Wait()

	fmt.Printf("Load: %d clients, %s between requests, keep-alive %t, through the proxy to 2 hello instances (health interval 1 s).\n",
		o.clients, o.interval, o.keepAlive)
	fmt.Printf("Baseline (2 s, no restart): sent %d, failed %d.\n\n", base.sent, base.failed())
	fmt.Println("| restart | rounds | requests per window | failed per restart (max) | refused | other transport errors | non-200 | slowest request (median / max) | agent back (median) |")
	fmt.Println("|---|---:|---:|---|---:|---:|---:|---|---:|")
	for _, r := range results {
		var sent, failed, refused, transport, non200, worst int
		var slow []time.Duration
		for _, w := range r.windows {
			sent += w.sent
			failed += w.failed()
			worst = max(worst, w.failed())
			refused += w.refused
			transport += w.transport
			non200 += w.non200
			slow = append(slow, w.slowest)
		}
		n := len(r.windows)
		fmt.Printf("| %s | %d | %d | %.1f (%d) | %d | %d | %d | %s / %s | %s |\n", r.kind, n, sent/n, float64(failed)/float64(n), worst,
			refused, transport, non200, ms(median(slow)), ms(maxOf(slow)), ms(median(r.restart)))
	}
	anyFailed := false
	for _, r := range results {
		for i, w := range r.windows {
			if w.firstErr != "" {
				anyFailed = true
				fmt.Fprintf(os.Stderr, "%s round %d: first failure: %s\n", r.kind, i+1, w.firstErr)
			}
		}
	}
	if anyFailed {
		// What the agents and up said about it.
		b, _ := os.ReadFile(logf.Name())
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "child exited unexpectedly") {
				continue // the restarts themselves
			}
			if strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "panic") {
				fmt.Fprintln(os.Stderr, line)
			}
		}
	}
	return nil
}

// deploy writes a project with examples/hello (desired 2), applies it and
// deploys v1 through the CLI.
func deploy(o options, tmp, serverAddr string) error {
	dir := filepath.Join(tmp, "project")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	project := "project \"bench\" {}\nenvironment \"staging\" { target = \"local\" }\n"
	svc := fmt.Sprintf(`service "hello" {
  command = [%q, "--port", "{{PORT}}"]
  version = "1.0.0"
  health {
    path     = "/healthz"
    interval = "1s"
    timeout  = "1s"
  }
  scale {
    min     = 1
    desired = 2
    max     = 4
  }
  deploy { strategy = "blue_green" }
}
`, o.hello)
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(project), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "hello.service.hcl"), []byte(svc), 0o644); err != nil {
		return err
	}
	tok, err := os.ReadFile(filepath.Join(tmp, ".runway", "server", "admin.token"))
	if err != nil {
		return err
	}
	for _, args := range [][]string{
		{"project", "apply", "--dir", dir, "--yes"},
		{"deploy", "hello", "--env", "staging", "--file", dir, "--version", "1", "--yes", "--wait"},
	} {
		cmd := exec.Command(o.runway, append([]string{"--server", "http://" + serverAddr, "--token", strings.TrimSpace(string(tok))}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "NO_COLOR=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("runway %s: %v\n%s", args[0], err, out)
		}
	}
	return nil
}

func healthPID(url string) int {
	hc := &http.Client{Timeout: time.Second}
	defer hc.CloseIdleConnections()
	resp, err := hc.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var h struct {
		PID int `json:"pid"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&h) != nil {
		return 0
	}
	return h.PID
}

func waitUntil(timeout time.Duration, what string, cond func() bool, upDone <-chan error) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		select {
		case err := <-upDone:
			return fmt.Errorf("runway up exited (%v) while waiting for %s", err, what)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s", what, timeout)
		}
	}
	return nil
}

// pause lets the load run for d (the measurement window itself, not a wait
// for a condition).
func pause(d time.Duration) error {
	<-time.After(d)
	return nil
}

func freeAddrs(n int) ([]string, error) {
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func maxOf(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
