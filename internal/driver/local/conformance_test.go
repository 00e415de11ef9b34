package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/targettest"
)

// localTarget is a real agent with its proxy on loopback and the driver
// in front of it, as `runway server` builds it (without fencing).
type localTarget struct {
	d        *Driver
	client   *agentapi.Client
	taskDir  string
	proxyURL string
	mark     string
	dir      string
}

func startLocal(t *testing.T) *localTarget {
	t.Helper()
	// First, so that its check runs after the agent stopped (cleanups run
	// last in, first out).
	mark := testMark(t)
	dir := t.TempDir()
	p, err := proxy.New(proxy.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: proxy.Off})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{DataDir: filepath.Join(dir, "agent"), Listen: "127.0.0.1:0", StopInstances: true,
		Proxy: p, PortMin: portMin, PortMax: portMax, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	t.Cleanup(func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("agent: %v", err)
			}
		})
	})
	deadline := time.Now().Add(10 * time.Second)
	for p.HTTPAddr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the proxy does not listen")
		}
		<-time.After(10 * time.Millisecond)
	}
	lt := &localTarget{client: agentapi.NewClient(a.URL(), a.Token()), taskDir: filepath.Join(dir, "tasks"),
		proxyURL: p.HTTPAddr().String(), mark: mark, dir: dir}
	lt.d = lt.newDriver()
	return lt
}

// newDriver is the driver a (re)started server makes: nothing of the last
// one's memory, the same agent and task records.
func (lt *localTarget) newDriver() *Driver {
	specOf := func(_ context.Context, release string) (*config.Service, error) {
		return &config.Service{Name: "conformance", Version: "1"}, nil
	}
	return New(lt.client, lt.taskDir, lt.proxyURL, specOf, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func (lt *localTarget) spec(ref target.ServiceRef) *config.Service {
	ms := func(n int) config.Duration { return config.Duration{Duration: time.Duration(n) * time.Millisecond} }
	s := &config.Service{Name: ref.Service, Project: ref.Project, Version: "1", Dir: lt.dir,
		Command: []string{helloBin, "--port", "{{PORT}}"},
		Env:     map[string]string{"TEST_MARK": lt.mark},
		Health: config.Health{Kind: "http", Path: "/healthz", Interval: ms(100), Timeout: ms(100),
			HealthyThreshold: 1, UnhealthyThreshold: 3, StartPeriod: ms(5000)},
	}
	s.Hooks.StopTimeout = ms(2000)
	return s
}

func (lt *localTarget) host(ref target.ServiceRef) string {
	return naming.Service(ref.Service, ref.Environment, "")
}

// TestConformance runs the suite every target passes against the local
// target: a real agent, proxy and hello instances.
func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) *targettest.Harness {
		lt := startLocal(t)
		return &targettest.Harness{
			Target:  lt.d,
			Restart: func(*testing.T) target.Target { return lt.newDriver() },
			Spec:    func(_ *testing.T, ref target.ServiceRef) *config.Service { return lt.spec(ref) },
			Send: func(t *testing.T, ref target.ServiceRef, n int) {
				for i := range n {
					req, _ := http.NewRequest(http.MethodGet, "http://"+lt.proxyURL+"/", nil)
					req.Host = lt.host(ref)
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						t.Fatalf("request %d: %v", i, err)
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						t.Fatalf("request %d: %s", i, resp.Status)
					}
				}
			},
			Hold: func(t *testing.T, ref target.ServiceRef, _ string) <-chan struct{} {
				// A WebSocket is in flight once upgraded, until the proxy
				// ends it at the drain (close 1001).
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				c, _, err := websocket.Dial(ctx, "ws://"+lt.proxyURL+"/ws", &websocket.DialOptions{Host: lt.host(ref)})
				if err != nil {
					cancel()
					t.Fatalf("websocket: %v", err)
				}
				ended := make(chan struct{})
				go func() {
					defer close(ended)
					defer cancel()
					defer c.CloseNow()
					for {
						if _, _, err := c.Read(ctx); err != nil {
							return
						}
					}
				}()
				t.Cleanup(func() { cancel(); <-ended })
				return ended
			},
			Task: func(t *testing.T, ref target.ServiceRef, id string, d time.Duration, code int) (target.Task, func() int) {
				runs := filepath.Join(t.TempDir(), "runs")
				script := fmt.Sprintf("echo run >> %s; sleep %.3f; exit %d", runs, d.Seconds(), code)
				task := target.Task{ID: id, Name: "pre_deploy", Ref: ref, Release: "r1", Spec: lt.spec(ref),
					Command: []string{"/bin/sh", "-c", script}}
				return task, func() int {
					b, _ := os.ReadFile(runs)
					return strings.Count(string(b), "run\n")
				}
			},
		}
	})
}
