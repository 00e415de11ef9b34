package docker

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/runwayhq/runway/internal/agent"
	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/driver/local"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/proxy"
	"github.com/runwayhq/runway/internal/supervisor"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/targettest"
)

// Instance ports of this package: 61000-61999, above the kernel's
// ephemeral range (32768-60999) and below no other package's (docs/testing.md).
// The conformance subtests run one agent at a time.
const portMin, portMax = 61000, 61999

// dockerTarget is a real agent whose supervisor runs containers on the
// package's podman, its proxy on loopback, and the driver in front, as
// `runway server` builds it (without fencing).
type dockerTarget struct {
	d        *Driver
	e        *container.Engine
	image    string
	client   *agentapi.Client
	taskDir  string
	proxyURL string
}

func startDocker(t *testing.T) *dockerTarget {
	t.Helper()
	e, image := engine(t)
	dir := t.TempDir()
	p, err := proxy.New(proxy.Options{HTTPAddr: "127.0.0.1:0", HTTPSAddr: proxy.Off})
	if err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Options{DataDir: filepath.Join(dir, "agent"), Listen: "127.0.0.1:0", StopInstances: true,
		Proxy: p, PortMin: portMin, PortMax: portMax, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Supervisor: supervisor.Options{Engine: e}})
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
	dt := &dockerTarget{e: e, image: image, client: agentapi.NewClient(a.URL(), a.Token()), taskDir: filepath.Join(dir, "tasks"),
		proxyURL: p.HTTPAddr().String()}
	dt.d = dt.newDriver()
	return dt
}

// newDriver is the driver a (re)started server makes: nothing of the last
// one's memory, the same agent, engine and task records.
func (dt *dockerTarget) newDriver() *Driver {
	specOf := func(_ context.Context, release string) (*config.Service, error) {
		return &config.Service{Name: "conformance", Version: "1"}, nil
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	return New(local.New(dt.client, dt.taskDir, dt.proxyURL, specOf, log), dt.e, dt.taskDir, dt.proxyURL, log)
}

func (dt *dockerTarget) spec(ref target.ServiceRef) *config.Service {
	ms := func(n int) config.Duration { return config.Duration{Duration: time.Duration(n) * time.Millisecond} }
	s := &config.Service{Name: ref.Service, Project: ref.Project, Version: "1", Image: dt.image, Port: 8080, Init: true,
		Health: config.Health{Kind: "http", Path: "/healthz", Interval: ms(100), Timeout: ms(100),
			HealthyThreshold: 1, UnhealthyThreshold: 3, StartPeriod: ms(5000)},
	}
	s.Hooks.StopTimeout = ms(2000)
	return s
}

func host(ref target.ServiceRef) string { return naming.Service(ref.Service, ref.Environment, "") }

// TestConformance runs the suite every target passes against the container
// target: a real agent and proxy, hello containers on a real podman, tasks
// as one-off containers.
func TestConformance(t *testing.T) {
	targettest.Run(t, func(t *testing.T) *targettest.Harness {
		dt := startDocker(t)
		return &targettest.Harness{
			Target:  dt.d,
			Restart: func(*testing.T) target.Target { return dt.newDriver() },
			Spec:    func(_ *testing.T, ref target.ServiceRef) *config.Service { return dt.spec(ref) },
			Send: func(t *testing.T, ref target.ServiceRef, n int) {
				for i := range n {
					req, _ := http.NewRequest(http.MethodGet, "http://"+dt.proxyURL+"/", nil)
					req.Host = host(ref)
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
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				c, _, err := websocket.Dial(ctx, "ws://"+dt.proxyURL+"/ws", &websocket.DialOptions{Host: host(ref)})
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
				since := time.Now().Add(-time.Second)
				t.Cleanup(func() { _ = dt.e.Remove(context.Background(), TaskContainer(id)) })
				task := target.Task{ID: id, Name: "pre_deploy", Ref: ref, Release: "r1", Spec: dt.spec(ref),
					Command: []string{"/hello", "task", d.String(), strconv.Itoa(code)}}
				return task, func() int {
					n, err := dt.e.Starts(context.Background(), TaskContainer(id), since)
					if err != nil {
						t.Errorf("count the task's starts: %v", err)
					}
					return n
				}
			},
		}
	})
}
