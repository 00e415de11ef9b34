// Command deploy measures Runway's releases end to end on this machine: it
// starts `runway up` (a real server and agent as two processes) on free
// loopback ports and measures
//
//   - app start: from exec of examples/hello to its /healthz answering 200;
//   - deploy latency: from exec of `runway deploy` (blue_green, 3 instances,
//     examples/hello's manifest) to the moment from which every request sent
//     through the proxy is answered by the new version, seen by probes that
//     keep requests flowing through the proxy during the release;
//   - engine throughput: N services (desired 1) released concurrently through
//     the API, first releases and then updates of all of them.
//
// It prints a Markdown table. run.sh builds what it needs and runs it.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
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
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
)

func main() {
	var o options
	flag.StringVar(&o.runway, "runway", "bin/runway", "the runway binary")
	flag.StringVar(&o.hello, "hello", "examples/hello/bin/hello", "the examples/hello binary")
	flag.StringVar(&o.manifest, "manifest", "examples/hello", "directory of the hello project (runway.hcl, hello.service.hcl)")
	flag.IntVar(&o.runs, "runs", 5, "deploys measured for the latency")
	flag.IntVar(&o.starts, "starts", 20, "hello starts measured for the app start time")
	flag.IntVar(&o.services, "services", 100, "services released concurrently for the throughput")
	flag.IntVar(&o.probes, "probes", 4, "concurrent probe connections during the latency runs")
	flag.StringVar(&o.skip, "skip", "", "comma-separated parts to skip: latency, throughput")
	flag.StringVar(&o.target, "target", "local", "the environment's target: local (processes) or docker (containers on a private podman; latency only)")
	flag.StringVar(&o.store, "store", "", "postgres:// URL of an empty database: the servers use it instead of SQLite")
	flag.IntVar(&o.replicas, "replicas", 1, "servers sharing -store; the throughput part submits to them in turn")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench/deploy:", err)
		os.Exit(1)
	}
}

type options struct {
	runway, hello, manifest, skip, store string
	target                               string
	runs, starts, services, probes       int
	replicas                             int
}

type row struct{ what, figure, note string }

func run(o options) error {
	for _, p := range []*string{&o.runway, &o.hello, &o.manifest} {
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	tmp, err := os.MkdirTemp("", "bench-deploy-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	var rows []row
	var d *dockerBench
	switch o.target {
	case "local":
	case "docker":
		if d, err = startDocker(); err != nil {
			return err
		}
		defer d.stop()
		// The agent and server find the engine the way users' do.
		os.Setenv("DOCKER_HOST", d.pe.Host)
		o.skip += ",throughput"
	default:
		return fmt.Errorf("-target %q: want local or docker", o.target)
	}
	var start dist
	if d != nil {
		start, err = d.appStart(o.starts)
	} else {
		start, err = appStart(o.hello, o.starts)
	}
	if err != nil {
		return fmt.Errorf("app start: %w", err)
	}
	what := "hello app start (exec → /healthz 200)"
	if d != nil {
		what = "hello container start (create → /healthz 200 on the published port)"
	}
	rows = append(rows, row{what, fmt.Sprintf("median %s, max %s", ms(start.median), ms(start.max)),
		fmt.Sprintf("%d starts", o.starts)})

	if o.store != "" {
		// runway up's server and the other replicas inherit both.
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return err
		}
		os.Setenv("RUNWAY_STORE", o.store)
		os.Setenv("RUNWAY_MASTER_KEY", base64.StdEncoding.EncodeToString(key))
	} else if o.replicas > 1 {
		return errors.New("-replicas needs -store: several servers share a PostgreSQL database")
	}
	up, err := startUp(o.runway, tmp)
	if err != nil {
		return err
	}
	defer up.stop()
	for i := 2; i <= o.replicas; i++ {
		stop, err := up.startReplica(i)
		if err != nil {
			return err
		}
		defer stop()
	}

	if !strings.Contains(o.skip, "latency") {
		r, err := latency(o, up, tmp, start.median, d)
		if err != nil {
			return fmt.Errorf("deploy latency: %w", err)
		}
		rows = append(rows, r...)
	}
	if !strings.Contains(o.skip, "throughput") {
		r, err := throughput(o, up, tmp)
		if err != nil {
			return fmt.Errorf("engine throughput: %w", err)
		}
		rows = append(rows, r...)
	}
	if err := up.stop(); err != nil {
		return err
	}
	if d != nil {
		if n, err := d.leftover(); err != nil || n > 0 {
			return fmt.Errorf("%d bench containers left after runway up stopped (%v)", n, err)
		}
	} else if n := leftover(o.hello); n > 0 {
		return fmt.Errorf("%d hello processes left after runway up stopped", n)
	}

	storeName := "SQLite, 1 server"
	if o.store != "" {
		storeName = fmt.Sprintf("PostgreSQL, %d server(s)", o.replicas)
	}
	fmt.Printf("\n## Releases, target %s — %s UTC — %d cores — %s\n\n", o.target, time.Now().UTC().Format("2006-01-02 15:04"), runtime.NumCPU(), storeName)
	fmt.Println("| what | figure | note |")
	fmt.Println("|---|---|---|")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s |\n", r.what, r.figure, r.note)
	}
	return nil
}

// --- app start ---------------------------------------------------------------

type dist struct{ median, max time.Duration }

func distOf(d []time.Duration) dist {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return dist{median: d[len(d)/2], max: d[len(d)-1]}
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(float64(len(s)-1) * p)
	return s[i]
}

// appStart execs hello n times and measures until /healthz answers 200,
// polling every millisecond.
func appStart(hello string, n int) (dist, error) {
	var out []time.Duration
	hc := &http.Client{Timeout: time.Second}
	for range n {
		port, err := freePort()
		if err != nil {
			return dist{}, err
		}
		url := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
		cmd := exec.Command(hello, "--port", fmt.Sprint(port))
		t0 := time.Now()
		if err := cmd.Start(); err != nil {
			return dist{}, err
		}
		deadline := t0.Add(10 * time.Second)
		var took time.Duration
		for time.Now().Before(deadline) {
			resp, err := hc.Get(url)
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					took = time.Since(t0)
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
		if took == 0 {
			return dist{}, errors.New("hello did not answer /healthz within 10s")
		}
		out = append(out, took)
	}
	return distOf(out), nil
}

// --- runway up ---------------------------------------------------------------

type upProc struct {
	cmd       *exec.Cmd
	dir       string
	runway    string
	server    string
	agentAddr string
	proxyHTTP string
	// clients are the API clients of every server: runway up's first.
	clients []*client.Client
	token   string
	done    chan error
	stopped bool
	client  *client.Client
}

func startUp(runway, tmp string) (*upProc, error) {
	var ports [4]int
	for i := range ports {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		ports[i] = p
	}
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	u := &upProc{dir: tmp, runway: runway, server: "http://" + addr(ports[0]), agentAddr: addr(ports[1]), proxyHTTP: addr(ports[2]), done: make(chan error, 1)}
	log, err := os.Create(filepath.Join(tmp, "up.log"))
	if err != nil {
		return nil, err
	}
	u.cmd = exec.Command(runway, "up", "--data-dir", filepath.Join(tmp, ".runway"), "--listen", addr(ports[0]),
		"--agent-listen", addr(ports[1]), "--http", addr(ports[2]), "--https", addr(ports[3]))
	u.cmd.Dir = tmp
	// runway up records its context in the user's config dir: the bench's own.
	u.cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(tmp, "config"))
	u.cmd.Stdout, u.cmd.Stderr = log, log
	if err := u.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { u.done <- u.cmd.Wait(); log.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(filepath.Join(tmp, ".runway", "server", "admin.token"))
		if err == nil {
			u.token = strings.TrimSpace(string(b))
			c, err := client.New(u.server, u.token)
			if err != nil {
				return nil, err
			}
			if c.Health(context.Background()) == nil {
				u.client = c
				u.clients = []*client.Client{c}
				return u, nil
			}
		}
		select {
		case err := <-u.done:
			out, _ := os.ReadFile(filepath.Join(tmp, "up.log"))
			return nil, fmt.Errorf("runway up exited (%v):\n%s", err, out)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			u.stop()
			return nil, errors.New("runway up did not come up within 30s")
		}
	}
}

// startReplica starts server n on runway up's store and agent, and adds
// its client; stop ends it (SIGTERM).
func (u *upProc) startReplica(n int) (stop func(), err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(u.dir, ".runway", fmt.Sprintf("server-%d", n))
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	log, err := os.Create(filepath.Join(u.dir, fmt.Sprintf("server-%d.log", n)))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(u.runway, "server", "--data-dir", dir, "--listen", addr, "--agent-url", "http://"+u.agentAddr,
		"--agent-token-file", filepath.Join(u.dir, ".runway", "agent", "agent.token"), "--proxy-http", u.proxyHTTP)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(done) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(filepath.Join(dir, "admin.token")); err == nil {
			c, err := client.New("http://"+addr, strings.TrimSpace(string(b)))
			if err != nil {
				stop()
				return nil, err
			}
			if c.Health(context.Background()) == nil {
				u.clients = append(u.clients, c)
				return stop, nil
			}
		}
		select {
		case <-done:
			out, _ := os.ReadFile(log.Name())
			return nil, fmt.Errorf("server %d exited:\n%s", n, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	stop()
	return nil, fmt.Errorf("server %d did not come up within 30s", n)
}

// stop interrupts runway up (as Ctrl-C does) and waits for it.
func (u *upProc) stop() error {
	if u.stopped {
		return nil
	}
	u.stopped = true
	_ = u.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-u.done:
		if err != nil {
			return fmt.Errorf("runway up: %w (log in %s)", err, filepath.Join(u.dir, "up.log"))
		}
		return nil
	case <-time.After(2 * time.Minute):
		_ = u.cmd.Process.Kill()
		return errors.New("runway up did not stop within 2 minutes")
	}
}

// cli runs a runway command against the server and returns its stdout.
func (u *upProc) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(u.runway, args...)
	cmd.Dir = u.dir
	cmd.Env = append(os.Environ(), "RUNWAY_SERVER="+u.server, "RUNWAY_TOKEN="+u.token, "NO_COLOR=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("runway %s: %w\n%s%s", strings.Join(args, " "), err, out, stderr.String())
	}
	return out, nil
}

// --- deploy latency ----------------------------------------------------------

// sample is one probe request: when it was sent and which version answered
// ("" for a failure).
type sample struct {
	sent    time.Time
	version string
}

// prober sends requests through the proxy back to back on a few keep-alive
// connections and records every answer.
type prober struct {
	mu      sync.Mutex
	samples []sample
}

func (p *prober) run(ctx context.Context, url, host string, conns int) *sync.WaitGroup {
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: conns}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
				req.Host = host
				t := time.Now()
				v := ""
				resp, err := hc.Do(req)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == http.StatusOK {
						v = versionOf(string(b))
					}
				}
				if ctx.Err() != nil {
					return
				}
				p.mu.Lock()
				p.samples = append(p.samples, sample{sent: t, version: v})
				p.mu.Unlock()
			}
		}()
	}
	return &wg
}

// versionOf reads "hello hi from v2 (…)".
func versionOf(body string) string {
	_, rest, ok := strings.Cut(body, " from v")
	if !ok {
		return "?"
	}
	v, _, _ := strings.Cut(rest, " ")
	return v
}

// switchTime returns the earliest send time from which every request was
// answered by version v, and how many requests sent after t0 failed.
func (p *prober) switchTime(t0 time.Time, v string) (time.Time, int, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := append([]sample(nil), p.samples...)
	sort.Slice(s, func(i, j int) bool { return s[i].sent.Before(s[j].sent) })
	failed := 0
	var at time.Time
	for _, x := range s {
		if x.sent.Before(t0) {
			continue
		}
		if x.version == "" {
			failed++
		}
		if x.version != v {
			at = time.Time{}
			continue
		}
		if at.IsZero() {
			at = x.sent
		}
	}
	return at, failed, !at.IsZero()
}

func latency(o options, u *upProc, tmp string, appStart time.Duration, d *dockerBench) ([]row, error) {
	dir := filepath.Join(tmp, "hello")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, err
	}
	for _, f := range []string{"runway.hcl", "hello.service.hcl"} {
		b, err := os.ReadFile(filepath.Join(o.manifest, f))
		if err != nil {
			return nil, err
		}
		if d != nil {
			if b, err = dockerManifest(f, b); err != nil {
				return nil, err
			}
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(o.hello, filepath.Join(dir, "bin", "hello")); err != nil {
		return nil, err
	}
	// tag makes version v's image (the same bytes under the version's tag,
	// as `runway build` would leave them); processes need nothing.
	tag := func(string) error { return nil }
	if d != nil {
		tag = d.tag
	}
	const env = "staging"
	ws, diags := config.Load(dir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("load %s: %s", dir, diags.Error())
	}
	svc, diags := ws.Resolve("hello", env)
	if diags.HasErrors() {
		return nil, fmt.Errorf("resolve hello: %s", diags.Error())
	}
	interval := svc.Health.Interval.Duration
	goal := appStart + 2*interval + 500*time.Millisecond

	if _, err := u.cli("project", "apply", "--dir", dir, "--yes"); err != nil {
		return nil, err
	}
	if err := tag("1"); err != nil {
		return nil, err
	}
	if _, err := u.cli("deploy", "hello", "--env", env, "--file", dir, "--version", "1", "--yes", "--wait"); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &prober{}
	wg := p.run(ctx, "http://"+u.proxyHTTP+"/", "hello."+env+".localhost", o.probes)
	defer func() { cancel(); wg.Wait() }()

	var total, server []time.Duration
	failed := 0
	for i := range o.runs {
		v := fmt.Sprint(i + 2)
		if err := tag(v); err != nil {
			return nil, err
		}
		t0 := time.Now()
		out, err := u.cli("deploy", "hello", "--env", env, "--file", dir, "--version", v, "--yes", "--output", "json")
		if err != nil {
			return nil, err
		}
		var rel apiwire.Release
		if err := json.Unmarshal(out, &rel); err != nil {
			return nil, fmt.Errorf("decode deploy output: %w", err)
		}
		d, err := waitDone(u.client, rel.ID, 2*time.Minute)
		if err != nil {
			return nil, err
		}
		if d.State != "Success" {
			return nil, fmt.Errorf("release %s ended %s: %s", d.ID, d.State, d.Error)
		}
		at, f, ok := p.switchTime(t0, v)
		if !ok {
			return nil, fmt.Errorf("release %s: version %s never served all requests", d.ID, v)
		}
		failed += f
		total = append(total, at.Sub(t0))
		// The server's own view: submission to the route switch.
		var sub, routed time.Time
		for _, e := range d.Events {
			if e.Message == "release submitted" {
				sub = e.At
			}
			if strings.HasPrefix(e.Message, "route ") && routed.IsZero() {
				routed = e.At
			}
		}
		server = append(server, routed.Sub(sub))
		if os.Getenv("BENCH_EVENTS") != "" {
			for _, e := range d.Events {
				fmt.Fprintf(os.Stderr, "  +%s %s\n", ms(e.At.Sub(sub)), e.Message)
			}
		}
		fmt.Fprintf(os.Stderr, "deploy v%s: 100%% on v%s after %s (server: submitted → route switch %s), %d failed probes\n",
			v, v, ms(at.Sub(t0)), ms(routed.Sub(sub)), f)
	}
	cancel()
	wg.Wait()
	p.mu.Lock()
	probes := len(p.samples)
	p.mu.Unlock()
	td, sd := distOf(total), distOf(server)
	verdict := "meets"
	if td.max > goal {
		verdict = "misses"
	}
	return []row{
		{fmt.Sprintf("deploy latency, blue_green, 3 hello %s (`runway deploy` exec → 100 %% of requests on the new version)", map[bool]string{false: "processes", true: "containers"}[d != nil]),
			fmt.Sprintf("median %s, max %s", ms(td.median), ms(td.max)),
			fmt.Sprintf("%d deploys; %s the goal %s (app start %s + 2 × health interval %s + 0.5 s)", o.runs, verdict, ms(goal), ms(appStart), interval)},
		{"of which server-side: release submitted → route switch", fmt.Sprintf("median %s, max %s", ms(sd.median), ms(sd.max)), "release events"},
		{"failed requests during those deploys", fmt.Sprint(failed), fmt.Sprintf("%d probe requests through the proxy, %d connections", probes, o.probes)},
	}, nil
}

func waitDone(c *client.Client, id string, timeout time.Duration) (*apiwire.ReleaseDetail, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		d, err := c.Release(ctx, id)
		if err != nil {
			return nil, err
		}
		if d.Done {
			return d, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("release %s not done within %s (state %s)", id, timeout, d.State)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// --- engine throughput -------------------------------------------------------

const manyService = `service "%s" {
  command = ["./bin/hello", "--port", "{{PORT}}"]
  version = "1"
  health {
    path              = "/healthz"
    interval          = "1s"
    timeout           = "1s"
    healthy_threshold = 1
  }
  scale {
    min     = 1
    desired = 1
    max     = 1
  }
  deploy {
    strategy         = "blue_green"
    scale_down_delay = "0s"
  }
}
`

func throughput(o options, u *upProc, tmp string) ([]row, error) {
	dir := filepath.Join(tmp, "many")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		return nil, err
	}
	if err := os.Symlink(o.hello, filepath.Join(dir, "bin", "hello")); err != nil {
		return nil, err
	}
	const env = "bench"
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte("project \"many\" {}\nenvironment \"bench\" { target = \"local\" }\n"), 0o644); err != nil {
		return nil, err
	}
	names := make([]string, o.services)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%03d", i+1)
		if err := os.WriteFile(filepath.Join(dir, names[i]+".service.hcl"), fmt.Appendf(nil, manyService, names[i]), 0o644); err != nil {
			return nil, err
		}
	}
	ws, diags := config.Load(dir)
	if diags.HasErrors() {
		return nil, fmt.Errorf("load %s: %s", dir, diags.Error())
	}
	if _, err := u.cli("project", "apply", "--dir", dir, "--yes"); err != nil {
		return nil, err
	}
	projectSource, err := os.ReadFile(filepath.Join(dir, "runway.hcl"))
	if err != nil {
		return nil, err
	}
	sources := make([][]apiwire.SourceFile, len(names))
	for i, n := range names {
		m := ws.Service(n)
		b, err := os.ReadFile(m.File)
		if err != nil {
			return nil, err
		}
		sources[i] = []apiwire.SourceFile{{Name: filepath.Base(m.File), Content: string(b)}}
	}
	var rows []row
	for round, what := range []string{"first releases", "updates (blue_green switch, old group deleted)"} {
		version := fmt.Sprint(round + 1)
		t0 := time.Now()
		ids := make([]string, len(names))
		errs := make([]error, len(names))
		var wg sync.WaitGroup
		for i := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// Spread over the servers as a load balancer would: the
				// server that records a release runs it.
				rel, err := u.clients[i%len(u.clients)].Deploy(context.Background(), apiwire.DeployRequest{
					Project: ws.Project.Name, Environment: env, Service: names[i], Version: version,
					Sources: sources[i], ProjectSource: string(projectSource), Dir: dir,
					RequestID: ulid.MustNew(ulid.Now(), rand.Reader).String(), RequestedAt: time.Now().UTC(),
				})
				if err != nil {
					errs[i] = err
					return
				}
				ids[i] = rel.ID
			}()
		}
		wg.Wait()
		submitted := time.Since(t0)
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
		want := map[string]bool{}
		for _, id := range ids {
			want[id] = true
		}
		var durs []time.Duration
		var last time.Time
		runners := map[string]int{}
		deadline := time.Now().Add(5 * time.Minute)
		for len(want) > 0 {
			list, err := u.client.Releases(context.Background(), apiwire.ReleaseFilter{Environment: env, Limit: 1000})
			if err != nil {
				return nil, err
			}
			for _, r := range list {
				if !want[r.ID] || !r.Done {
					continue
				}
				delete(want, r.ID)
				if r.State != "Success" {
					return nil, fmt.Errorf("release %s of %s ended %s: %s", r.ID, r.Service, r.State, r.Error)
				}
				durs = append(durs, r.FinishedAt.Sub(r.CreatedAt))
				if r.Runner != "" {
					runners[r.Runner]++
				}
				if r.FinishedAt.After(last) {
					last = *r.FinishedAt
				}
			}
			if time.Now().After(deadline) {
				return nil, fmt.Errorf("%d releases not done after 5 minutes", len(want))
			}
			time.Sleep(100 * time.Millisecond)
		}
		total := last.Sub(t0)
		if err := breakdown(u.client, ids); err != nil {
			return nil, err
		}
		rows = append(rows, row{
			fmt.Sprintf("engine throughput: %d services released concurrently, %s", o.services, what),
			fmt.Sprintf("%s total, %.1f releases/s", ms(total), float64(o.services)/total.Seconds()),
			fmt.Sprintf("per release (created → finished) p50 %s, p99 %s, max %s; submitting all took %s%s",
				ms(percentile(durs, 0.5)), ms(percentile(durs, 0.99)), ms(percentile(durs, 1)), ms(submitted), runBy(runners)),
		})
		fmt.Fprintf(os.Stderr, "throughput round %d (%s): %s\n", round+1, what, rows[len(rows)-1].figure)
	}
	return rows, nil
}

// runBy says how many releases each replica ran ("" with one server on SQLite).
func runBy(runners map[string]int) string {
	if len(runners) == 0 {
		return ""
	}
	var names []string
	for n := range runners {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %d", n, runners[n]))
	}
	return "; run by " + strings.Join(parts, ", ")
}

// breakdown prints, to stderr, where the releases spent their time: the
// median and max time from each kind of event to the next.
func breakdown(c *client.Client, ids []string) error {
	spent := map[string][]time.Duration{}
	var order []string
	for _, id := range ids {
		d, err := c.Release(context.Background(), id)
		if err != nil {
			return err
		}
		for i := 0; i+1 < len(d.Events); i++ {
			if d.Events[i+1].At.Before(d.Events[i].At) {
				continue // an event recorded late, out of time order: not a step
			}
			k := d.Events[i].State + ": " + eventKind(d.Events[i].Message)
			if _, ok := spent[k]; !ok {
				order = append(order, k)
			}
			spent[k] = append(spent[k], d.Events[i+1].At.Sub(d.Events[i].At))
		}
	}
	fmt.Fprintln(os.Stderr, "  time from each event to the next (median / max over the releases):")
	for _, k := range order {
		fmt.Fprintf(os.Stderr, "    %-55s %8s / %8s\n", k, ms(percentile(spent[k], 0.5)), ms(percentile(spent[k], 1)))
	}
	return nil
}

// eventKind drops the names and numbers from an event message.
func eventKind(msg string) string {
	var out []string
	for _, w := range strings.Fields(msg) {
		if strings.ContainsAny(w, "0123456789") {
			w = "…"
		}
		out = append(out, w)
	}
	return strings.Join(out, " ")
}

// --- helpers -----------------------------------------------------------------

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
}

// leftover counts processes still running the hello binary.
func leftover(hello string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && exe == hello {
			n++
		}
	}
	return n
}
