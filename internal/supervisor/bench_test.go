package supervisor

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

// benchSpec is hello as in examples/hello/hello.service.hcl: an HTTP check
// every second (the first one 100 ms after start).
func benchSpec(name, mark string, n int) agentapi.GroupSpec {
	s := helloSpec(name, mark, n)
	s.Health.Interval = agentapi.Duration(time.Second)
	s.Health.UnhealthyThreshold = 3
	return s
}

// BenchmarkStart100Healthy measures the time from CreateGroup of 100 hello
// instances to all of them healthy (routable).
func BenchmarkStart100Healthy(b *testing.B) {
	mark := testMark(b)
	opts := testOptions(b)
	opts.Logger = nil
	s := openSup(b, opts)
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("bench-%d", i)
		if _, _, err := s.CreateGroup(benchSpec(name, mark, 100)); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for !allHealthy(s, name, 100) {
			if time.Now().After(deadline) {
				b.Fatal("100 instances not healthy within 2 minutes")
			}
			<-time.After(5 * time.Millisecond)
		}
		b.StopTimer()
		done, _ := s.DeleteGroup(name, 0)
		<-done
		b.StartTimer()
	}
}

func selfRSS() int64 {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n << 10
		}
	}
	return 0
}

// BenchmarkAgentMemoryPerInstance reports what supervising one healthy
// instance costs the agent: Go heap, RSS and goroutines.
func BenchmarkAgentMemoryPerInstance(b *testing.B) {
	mark := testMark(b)
	opts := testOptions(b)
	opts.Logger = nil
	s := openSup(b, opts)
	const n = 100
	for i := 0; b.Loop(); i++ {
		runtime.GC()
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		rss0, g0 := selfRSS(), runtime.NumGoroutine()
		name := fmt.Sprintf("mem-%d", i)
		if _, _, err := s.CreateGroup(benchSpec(name, mark, n)); err != nil {
			b.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for !allHealthy(s, name, n) {
			if time.Now().After(deadline) {
				b.Fatal("not healthy")
			}
			<-time.After(10 * time.Millisecond)
		}
		// Let a few health check rounds run.
		<-time.After(3 * time.Second)
		runtime.GC()
		runtime.ReadMemStats(&m1)
		b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/n, "heap-B/instance")
		b.ReportMetric(float64(selfRSS()-rss0)/n, "rss-B/instance")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/instance")
		b.StopTimer()
		done, _ := s.DeleteGroup(name, 0)
		<-done
		b.StartTimer()
	}
}

// BenchmarkInstanceProcesses is the /proc scan for an instance's marked
// processes that every stop and restart of an instance makes; its cost
// grows with the number of processes on the machine.
func BenchmarkInstanceProcesses(b *testing.B) {
	ents, _ := os.ReadDir("/proc")
	b.Logf("%d entries in /proc", len(ents))
	for b.Loop() {
		instanceProcesses("0123456789abcdef", "01234567")
	}
}
