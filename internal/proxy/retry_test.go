package proxy

import (
	"context"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A target process killed with SIGKILL mid-load: requests that start after
// it died are retried on the other target and succeed, and it is ejected.
func TestKilledTargetIsRetriedAndEjected(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	victim, victimAddr := startHello(t, "g/victim")
	_, survivorAddr := startHello(t, "g/survivor")
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{
		"g": {{Instance: "g/victim", Addr: victimAddr}, {Instance: "g/survivor", Addr: survivorAddr}}}))

	c := p.client(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var dead atomic.Bool
	var okBefore, failBefore, okAfter, failAfter atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				after := dead.Load()
				req, _ := http.NewRequestWithContext(ctx, "GET", webURL+"/", nil)
				resp, err := c.Do(req)
				ok := err == nil && resp.StatusCode == 200
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					ok = ok && err == nil
				}
				if ctx.Err() != nil {
					return
				}
				switch {
				case after && ok:
					okAfter.Add(1)
				case after:
					failAfter.Add(1)
				case ok:
					okBefore.Add(1)
				default:
					failBefore.Add(1)
				}
			}
		}()
	}
	waitFor(t, "traffic before the kill", 20*time.Second, func() bool { return okBefore.Load() >= 300 })
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// Once the port refuses connections the process is gone.
	waitFor(t, "the victim to die", 10*time.Second, func() bool {
		conn, err := net.Dial("tcp", victimAddr)
		if err == nil {
			conn.Close()
		}
		return err != nil
	})
	dead.Store(true)
	waitFor(t, "traffic after the kill", 20*time.Second, func() bool { return okAfter.Load() >= 500 })
	cancel()
	wg.Wait()
	ejections := counterValue(t, p.reg, "runway_proxy_ejections_total", "g/victim")
	retries := counterValue(t, p.reg, "runway_proxy_retries_total", "g/victim")
	t.Logf("before kill: %d ok, %d failed (in flight at the kill); after: %d ok, %d failed; retries %v, ejections %v",
		okBefore.Load(), failBefore.Load(), okAfter.Load(), failAfter.Load(), retries, ejections)
	if failAfter.Load() != 0 {
		t.Errorf("%d requests started after the target died failed; want all retried", failAfter.Load())
	}
	if failBefore.Load() > 16 {
		t.Errorf("%d requests failed around the kill; at most the 16 in flight may", failBefore.Load())
	}
	if retries < 1 || ejections < 1 {
		t.Errorf("retries %v, ejections %v; want both ≥ 1", retries, ejections)
	}
}

func TestRefusedConnectionRetriedOnce(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	closed := refusingAddr(t)
	b := newBackend(t, "g/ok", nil)
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{
		"g": {{Instance: "g/closed", Addr: closed}, b.target()}}))
	c := p.client(t)
	for range 20 {
		if resp, body := get(t, c, webURL+"/"); resp.StatusCode != 200 {
			t.Fatalf("got %d %q", resp.StatusCode, body)
		}
	}
	if ts := findTarget(p.Targets(), "g/closed"); !ts.Ejected {
		t.Errorf("refusing target not ejected: %+v", ts)
	}
	// With nothing else to try, the refusal is a 502 and counts as a failure.
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{
		"g": {{Instance: "g/closed2", Addr: closed}}}))
	resp, _ := get(t, c, webURL+"/")
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("single refusing target: %d, want 502", resp.StatusCode)
	}
	waitFor(t, "accounting", 5*time.Second, func() bool { return p.Counters(webKey).Served == 21 })
	if cs := p.Counters(webKey); cs.Failed != 1 {
		t.Errorf("counters %+v, want 21 served, 1 failed", cs)
	}
}

// A request whose body was already sent is not retried, even on a
// connection error.
func TestNoRetryAfterBodySent(t *testing.T) {
	t.Parallel()
	p := startProxy(t, Options{})
	var hits atomic.Int64
	reset := newBackend(t, "g/reset", func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		io.ReadAll(r.Body)
		conn, _, _ := http.NewResponseController(w).Hijack()
		conn.(*net.TCPConn).SetLinger(0)
		conn.Close()
	})
	mustUpdate(t, p, oneService([]Backend{{Group: "g", Weight: 1}}, map[string][]Target{"g": {reset.target()}}))
	resp, err := p.client(t).Post(webURL+"/", "text/plain", stringsReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway || hits.Load() != 1 {
		t.Fatalf("got %d after %d attempts, want 502 after exactly 1", resp.StatusCode, hits.Load())
	}
}

func findTarget(ts []TargetStatus, instance string) TargetStatus {
	for _, s := range ts {
		if s.Instance == instance {
			return s
		}
	}
	return TargetStatus{}
}

// counterValue sums the samples of a metric whose target label is instance.
func counterValue(t *testing.T, reg prometheus.Gatherer, name, instance string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelValue(m, "target") == instance || instance == "" {
				switch {
				case m.Counter != nil:
					sum += m.GetCounter().GetValue()
				case m.Gauge != nil:
					sum += m.GetGauge().GetValue()
				case m.Histogram != nil:
					sum += float64(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return sum
}

func labelValue(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// refusingAddr is a loopback address that refuses connections for the
// whole test: a socket bound to it that does not listen, so no other test
// can take the port (a listener closed at once could see its port reused by
// a parallel test's backend).
func refusingAddr(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*syscall.SockaddrInet4).Port))
}
