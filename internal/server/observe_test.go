package server_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/server"
)

// logsJSON runs `runway logs hello --env dev --output json ARGS...`.
func (c *cluster) logsJSON(args ...string) []apiwire.LogLine {
	c.t.Helper()
	out, err := c.cli(append([]string{"logs", service, "--env", env, "--output", "json", "--tail", "0"}, args...)...)
	if err != nil {
		c.t.Fatalf("runway logs %v: %v\n%s", args, err, out)
	}
	var lines []apiwire.LogLine
	if err := json.Unmarshal([]byte(out), &lines); err != nil {
		c.t.Fatalf("runway logs output: %v\n%s", err, out)
	}
	return lines
}

func instancesOf(lines []apiwire.LogLine) []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range lines {
		if !seen[l.Instance] {
			seen[l.Instance] = true
			out = append(out, l.Instance)
		}
	}
	sort.Strings(out)
	return out
}

// TestLogs: the lines of three instances merged in time order, filtered
// by instance id and by text, and followed across a deploy: the new
// instances' lines arrive, none twice.
func TestLogs(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Desired: 3})
	mustState(t, c.deploy(service, "1"), "Success")
	stop := c.load(service)
	var lines []apiwire.LogLine
	waitFor(t, 30*time.Second, "request lines of 3 instances", func() bool {
		lines = c.logsJSON()
		n := map[string]int{}
		for _, l := range lines {
			if strings.HasPrefix(l.Text, "GET / 200") {
				n[l.Instance]++
			}
		}
		return len(n) == 3
	})
	stop()
	if got := instancesOf(lines); len(got) != 3 {
		t.Fatalf("lines of instances %v, want 3", got)
	}
	for i := 1; i < len(lines); i++ {
		if lines[i].Time.Before(lines[i-1].Time) {
			t.Fatalf("line %d (%s) is older than line %d (%s): not merged in time order", i, lines[i].Time, i-1, lines[i-1].Time)
		}
	}
	for _, l := range lines {
		if l.Version != "1" || l.Release == "" || l.Group == "" {
			t.Fatalf("line without its release: %+v", l)
		}
	}

	// --filter matches an instance's id: its lines only, all of them.
	one := instancesOf(lines)[1]
	byID := c.logsJSON("--filter", one)
	if got := instancesOf(byID); len(got) != 1 || got[0] != one {
		t.Errorf("--filter %s: lines of %v", one, got)
	}
	// ... or the text.
	byText := c.logsJSON("--filter", "listening on")
	if got := instancesOf(byText); len(got) != 3 {
		t.Errorf("--filter 'listening on': lines of %v, want every instance", got)
	}
	for _, l := range byText {
		if !strings.Contains(l.Text, "listening on") {
			t.Errorf("--filter 'listening on' kept %q", l.Text)
		}
	}
	// --instance and the table: "[a58980] :: 2 seconds ago :: text".
	out, err := c.cli("logs", service, "--env", env, "--instance", one, "--tail", "1")
	if err != nil {
		t.Fatal(err, out)
	}
	if !regexp.MustCompile(`^\[` + one[:6] + `\] :: (just now|[0-9]+ (second|minute)s? ago) :: `).MatchString(out) {
		t.Errorf("runway logs --instance: %q", out)
	}
	if out, err := c.cli("logs", service, "--env", env, "--since", "yesterday"); err == nil || !strings.Contains(out, "--since") {
		t.Errorf("a bad --since: %v %s", err, out)
	}

	// Follow across a deploy.
	f := c.follow("logs", service, "--env", env, "--follow", "--output", "json", "--tail", "5")
	stop = c.load(service)
	defer stop()
	mustState(t, c.deploy(service, "2"), "Success")
	var got []apiwire.LogLine
	waitFor(t, 30*time.Second, "request lines of v2 instances in the follow", func() bool {
		got = nil
		n := map[string]bool{}
		for _, line := range f.lines() {
			var l apiwire.LogLine
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("a followed line: %v: %q", err, line)
			}
			got = append(got, l)
			if l.Version == "2" && strings.HasPrefix(l.Text, "GET / 200") {
				n[l.Instance] = true
			}
		}
		return len(n) == 3
	})
	stop()
	f.stop()
	seen := map[string]bool{}
	v1 := 0
	for _, l := range got {
		key := l.Instance + " " + l.Time.Format(time.RFC3339Nano) + " " + l.Text
		if seen[key] {
			t.Errorf("line emitted twice: %s", key)
		}
		seen[key] = true
		if l.Version == "1" {
			v1++
		}
	}
	if v1 == 0 {
		t.Error("the follow had no line of v1's instances")
	}
	// Nothing lost: every v2 line the target kept, up to the last one the
	// follow had of the same instance, was followed. (Per instance: each
	// group comes on its own stream, so one may be ahead of another, and
	// lines of different instances carry no order among themselves.)
	last := map[string]time.Time{}
	for _, l := range got {
		if l.Time.After(last[l.Instance]) {
			last[l.Instance] = l.Time
		}
	}
	for _, l := range c.logsJSON() {
		if l.Version == "2" && !l.Time.After(last[l.Instance]) && !seen[l.Instance+" "+l.Time.Format(time.RFC3339Nano)+" "+l.Text] {
			t.Errorf("line lost by the follow: %s %s %q", l.Instance, l.Time.Format(time.RFC3339Nano), l.Text)
		}
	}
}

// TestLogsOfFailedRelease: a release that failed (FailureClean, its group
// deleted) still shows why with --release.
func TestLogsOfFailedRelease(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Desired: 1})
	mustState(t, c.deploy(service, "1"), "Success")
	c.writeManifest(manifest{Desired: 1, MaxTerms: 2, Env: map[string]string{"REQUIRE": "DATABASE_URL"}})
	rel := c.deploy(service, "2")
	mustState(t, rel, "FailureClean")
	lines := c.logsJSON("--release", rel.ID)
	found := false
	for _, l := range lines {
		if l.Release != rel.ID {
			t.Errorf("a line of another release: %+v", l)
		}
		found = found || strings.Contains(l.Text, "FATAL: DATABASE_URL is not set")
	}
	if !found {
		t.Errorf("the failed release's last words are not in its logs: %+v", lines)
	}
	// The live logs are v1's only.
	for _, l := range c.logsJSON() {
		if l.Version != "1" {
			t.Errorf("live logs hold a line of v%s", l.Version)
		}
	}
	if out, err := c.cli("logs", service, "--env", env, "--release", "01JD3Q8Y7Z5W2X4V6T8R0P2N4A"); err == nil || !strings.Contains(out, "no release 01JD3Q8Y7Z5W2X4V6T8R0P2N4A of service hello") {
		t.Errorf("logs of an unknown release: %v %s", err, out)
	}
}

// followed is a CLI process that follows something, its stdout read line by line.
type followed struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  []string
	done chan struct{}
}

func (c *cluster) follow(args ...string) *followed {
	c.t.Helper()
	b, err := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
	if err != nil {
		c.t.Fatal(err)
	}
	cmd := exec.Command(runwayBin, append([]string{"--server", "http://" + c.serverAddr, "--token", strings.TrimSpace(string(b))}, args...)...)
	cmd.Dir = filepath.Join(c.dir, "project")
	cmd.Env = append(os.Environ(), "NO_COLOR=1", "XDG_CONFIG_HOME="+filepath.Join(c.dir, "config"), "TEST_MARK="+c.mark)
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	f := &followed{t: c.t, cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(f.done)
		sc := bufio.NewScanner(pipe)
		sc.Buffer(nil, 4<<20)
		for sc.Scan() {
			f.mu.Lock()
			f.out = append(f.out, sc.Text())
			f.mu.Unlock()
		}
	}()
	c.t.Cleanup(f.stop)
	return f
}

func (f *followed) lines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.out...)
}

// stop interrupts the follower (Ctrl-C) and waits for it to end.
func (f *followed) stop() {
	if f.cmd.ProcessState != nil {
		return
	}
	_ = f.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-f.done:
	case <-time.After(10 * time.Second):
		_ = f.cmd.Process.Kill()
		<-f.done
		f.t.Errorf("%v did not stop on SIGINT", f.cmd.Args[3:])
	}
	_ = f.cmd.Wait()
}

var update = flag.Bool("update", false, "rewrite golden files")

// golden compares got with testdata/NAME (rewritten with -update).
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// normalizer replaces what changes from run to run (times, ids, measured
// values) with stable names, the first release id seen R1, the next R2...
type normalizer struct {
	ids map[string]string
}

var (
	timeRe     = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)?`)
	releaseRe  = regexp.MustCompile(`[0-9A-HJKMNP-TV-Z]{26}`)
	groupRe    = regexp.MustCompile(`hello-[0-9a-z]{26}`)
	instanceRe = regexp.MustCompile(`\b[0-9a-f]{8}\b`)
)

func (n *normalizer) apply(s string) string {
	if n.ids == nil {
		n.ids = map[string]string{}
	}
	name := func(prefix string, count *int) func(string) string {
		return func(id string) string {
			key := strings.ToUpper(id)
			if v, ok := n.ids[prefix+key]; ok {
				return v
			}
			*count++
			v := fmt.Sprintf("%s%d", prefix, *count)
			n.ids[prefix+key] = v
			return v
		}
	}
	var rels, insts int
	for k := range n.ids {
		if strings.HasPrefix(k, "R") {
			rels++
		} else {
			insts++
		}
	}
	s = timeRe.ReplaceAllString(s, "TIME")
	s = groupRe.ReplaceAllStringFunc(s, func(g string) string {
		return "hello-" + strings.ToLower(name("R", &rels)(strings.TrimPrefix(g, "hello-")))
	})
	s = releaseRe.ReplaceAllStringFunc(s, name("R", &rels))
	s = instanceRe.ReplaceAllStringFunc(s, name("I", &insts))
	return s
}

// TestEvents: a project apply and two releases, then `runway events`:
// one line each, with time, actor and target (golden, times and ids
// normalised); the instances' starts are recorded by the server's watcher.
func TestEvents(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.server.stop(t, syscall.SIGTERM)
	c.serverArgs = []string{"--watch-interval", "100ms"}
	c.startServer()
	c.writeManifest(manifest{Desired: 2})
	r1 := c.deploy(service, "1")
	mustState(t, r1, "Success")
	r2 := c.deploy(service, "2")
	mustState(t, r2, "Success")
	// The watcher records the v2 instances' starts.
	v2 := map[string]bool{}
	for _, g := range c.groups(service) {
		for _, in := range g.Instances {
			v2[in.ID] = true
		}
	}
	waitFor(t, 30*time.Second, "the starts of v2's instances as events", func() bool {
		out, err := c.cli("events", "--env", env, "--output", "json", "--limit", "1000")
		if err != nil {
			t.Fatal(err, out)
		}
		var evs []apiwire.ServiceEvent
		if err := json.Unmarshal([]byte(out), &evs); err != nil {
			t.Fatal(err, out)
		}
		n := 0
		for _, e := range evs {
			if e.Kind == "instance.started" && v2[strings.TrimPrefix(e.Target, "instance ")] && e.Release == r2.ID {
				n++
			}
		}
		return n == len(v2)
	})
	out, err := c.cli("events", "--env", env, "--limit", "1000")
	if err != nil {
		t.Fatal(err, out)
	}
	// What the watcher saw depends on when it looked; the releases' steps
	// and the apply do not.
	watched := regexp.MustCompile(`^\S+ \S+  \S+ +\S+ +(instance|group) `)
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !watched.MatchString(l) {
			kept = append(kept, l)
		}
	}
	n := &normalizer{}
	n.apply(r1.ID)
	n.apply(r2.ID)
	golden(t, "events.golden", n.apply(strings.Join(kept, "\n")+"\n"))

	// runway top --once: one frame of the same environment (CPU and memory
	// vary; no request went through the proxy).
	out, err = c.cli("top", "--env", env, "--once")
	if err != nil {
		t.Fatal(err, out)
	}
	measured := regexp.MustCompile(` +\d+\.\d% +\d+(\.\d)?(B|KiB|MiB|GiB) +`)
	golden(t, "top.golden", measured.ReplaceAllString(n.apply(out), " CPU% MEM "))
	out, err = c.cli("top", "--env", env, "--once", "--output", "json")
	if err != nil {
		t.Fatal(err, out)
	}
	var o apiwire.Overview
	if err := json.Unmarshal([]byte(out), &o); err != nil {
		t.Fatal(err, out)
	}
	if len(o.Services) != 1 || o.Services[0].Healthy != 2 || o.Services[0].Total != 2 || o.Services[0].RSSBytes == 0 ||
		len(o.Services[0].Versions) != 1 || o.Services[0].Versions[0].Weight != 100 {
		t.Errorf("top --once --output json: %s", out)
	}
}

// TestDeployWaitSaysWhy: `runway deploy --wait` follows the release's event
// stream and says what it waits for: a canary's pause, then its analysis
// waiting for traffic that never comes (no load here), until the timeout
// rolls it back.
func TestDeployWaitSaysWhy(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Strategy: "canary", Canary: canarySteps})
	mustState(t, c.deploy(service, "1"), "Success")
	c.writeManifest(manifest{Strategy: "canary", Canary: canarySteps, Timeout: "5s"})
	out, err := c.cli("deploy", service, "--env", env, "--file", filepath.Join(c.dir, "project"), "--version", "2", "--yes", "--wait")
	if err == nil {
		t.Fatalf("deploy --wait of a canary without traffic succeeded:\n%s", out)
	}
	for _, want := range []string{
		`Deploy +waiting: paused for 1.5s, until \d\d:\d\d:\d\d\n`,
		`Deploy +waiting: analysis waits for traffic: 0/20 requests\n`,
		`instances: v1 2/2 healthy, v2 1/1 healthy · traffic: (v1 70%, v2 30%|v2 30%, v1 70%)`,
		`ended in FailureClean: canary analysis undecided at the deadline`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("deploy --wait does not say %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "waiting: paused"); n != 1 {
		t.Errorf("the pause is said %d times, want once:\n%s", n, out)
	}
}

// scrape reads a /metrics exposition with a bearer token.
func scrape(t *testing.T, url, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return b
}

// TestMetricsDocumented scrapes a real server's and agent's /metrics after
// a release and some traffic: every metric is documented in
// docs/metrics.md, and follows Prometheus's conventions (promlint).
func TestMetricsDocumented(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Desired: 1})
	mustState(t, c.deploy(service, "1"), "Success")
	c.onlyVersion(service, "1")
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	admin, err := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	agentToken, err := os.ReadFile(filepath.Join(c.agentDir, "agent.token"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []struct{ name, url, token string }{
		{"server", "http://" + c.serverAddr + "/metrics", strings.TrimSpace(string(admin))},
		{"agent", "http://" + c.agentAddr + "/metrics", strings.TrimSpace(string(agentToken))},
	} {
		body := scrape(t, src.url, src.token)
		problems, err := promlint.New(bytes.NewReader(body)).Lint()
		if err != nil {
			t.Fatalf("%s: %v", src.name, err)
		}
		for _, p := range problems {
			if strings.HasPrefix(p.Metric, "runway_") {
				t.Errorf("%s: %s: %s", src.name, p.Metric, p.Text)
			}
		}
		p := expfmt.NewTextParser(model.LegacyValidation)
		families, err := p.TextToMetricFamilies(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", src.name, err)
		}
		names := []string{}
		for name := range families {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || strings.HasPrefix(name, "promhttp_") {
				continue // the standard collectors, documented as a group
			}
			if !strings.HasPrefix(name, "runway_") {
				t.Errorf("%s: metric %s has no runway_ prefix", src.name, name)
			}
			if !bytes.Contains(doc, []byte("`"+name+"`")) {
				t.Errorf("%s exports %s, which docs/metrics.md does not document", src.name, name)
			}
		}
		t.Logf("%s exports %s", src.name, strings.Join(names, " "))
	}
}

// TestAlertRules checks docs/prometheus-alerts.yml with promtool when it
// is installed, and that the rules and the Grafana dashboard name only
// documented metrics.
func TestAlertRules(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	metric := regexp.MustCompile(`runway_[a-z_]+`)
	for _, f := range []string{"prometheus-alerts.yml", "grafana-dashboard.json"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".json") && !json.Valid(b) {
			t.Errorf("%s is not valid JSON", f)
		}
		for _, m := range metric.FindAllString(string(b), -1) {
			m = strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_")
			if !bytes.Contains(doc, []byte("`"+m+"`")) {
				t.Errorf("%s uses %s, which docs/metrics.md does not document", f, m)
			}
		}
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian: apt-get install prometheus): docs/prometheus-alerts.yml not checked by it")
	}
	out, err := exec.Command(promtool, "check", "rules", filepath.Join("..", "..", "docs", "prometheus-alerts.yml")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestStatusShowsAlert: a service whose only instance stops answering
// (SIGSTOP) has no healthy instance while traffic is routed to it:
// `runway status` marks it ALERT, the change is an event, and
// runway_alarms counts it; once the agent replaced the instance, OK again.
func TestStatusShowsAlert(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.server.stop(t, syscall.SIGTERM)
	c.serverArgs = []string{"--watch-interval", "100ms", "--alarm-interval", "100ms"}
	c.startServer()
	c.writeManifest(manifest{Desired: 1})
	mustState(t, c.deploy(service, "1"), "Success")
	_, pids := c.servingGroup(service)
	if err := syscall.Kill(pids[0], syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pids[0], syscall.SIGCONT) })
	waitFor(t, 30*time.Second, "runway status to mark hello ALERT", func() bool {
		out, err := c.cli("status", service, "--env", env)
		return err == nil && strings.Contains(out, "hello in dev  ALERT: no_healthy_instance")
	})
	waitFor(t, 30*time.Second, "the alarm's change as an event", func() bool {
		out, _ := c.cli("events", "--env", env, "--service", service)
		return strings.Contains(out, "alarm no_healthy_instance of e2e/dev/hello: OK → ALERT")
	})
	// What the instance did is an event too (the watcher saw its health change).
	waitFor(t, 30*time.Second, "the instance's health change as an event", func() bool {
		out, _ := c.cli("events", "--env", env, "--service", service)
		return regexp.MustCompile(`local +instance [0-9a-f]{8} +instance [0-9a-f]{8} of hello-\S+ is (unhealthy|stopping|exited)`).MatchString(out)
	})
	_ = syscall.Kill(pids[0], syscall.SIGCONT)
	waitFor(t, 60*time.Second, "hello healthy again", func() bool {
		out, err := c.cli("status", service, "--env", env)
		return err == nil && !strings.Contains(out, "ALERT") && strings.Contains(out, "1/1")
	})
	waitFor(t, 30*time.Second, "the alarm back to OK as an event", func() bool {
		out, _ := c.cli("events", "--env", env, "--service", service)
		return strings.Contains(out, "alarm no_healthy_instance of e2e/dev/hello: ALERT → OK")
	})
	admin, _ := os.ReadFile(filepath.Join(c.serverDir, "admin.token"))
	body := scrape(t, "http://"+c.serverAddr+"/metrics", strings.TrimSpace(string(admin)))
	if !bytes.Contains(body, []byte(`runway_alarms{state="OK"} 3`)) {
		t.Errorf("runway_alarms after recovery:\n%s", grepLines(body, "runway_alarms"))
	}
}

func grepLines(b []byte, s string) string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAlarmNotifies: an alarm block on the error rate fires while a fifth
// of hello's requests fail: runway alarms and status show it in ALERT, it
// is an event, and its channel's webhook gets an HMAC-signed JSON
// notification, retried after the webhook's first two answers (500s) and
// recorded as delivered at the third attempt; a healthy release then
// brings it back to OK, which is one more notification.
func TestAlarmNotifies(t *testing.T) {
	t.Parallel()
	const key = "test-signing-key"
	var mu sync.Mutex
	var got []map[string]any
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ts, _ := strconv.ParseInt(r.Header.Get(server.HeaderTimestamp), 10, 64)
		if r.Header.Get(server.HeaderSignature) != server.Sign([]byte(key), ts, body) {
			t.Errorf("a notification without a valid signature: %q", r.Header.Get(server.HeaderSignature))
		}
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= 2 {
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		}
		var p map[string]any
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("notification body: %v: %s", err, body)
		}
		got = append(got, p)
	}))
	defer hook.Close()
	c := startCluster(t)
	c.server.stop(t, syscall.SIGTERM)
	c.serverArgs = []string{"--alarm-interval", "200ms"}
	c.startServer()
	m := manifest{Desired: 1, Env: map[string]string{"FAIL_RATE": "0.5"},
		ProjectExtra: fmt.Sprintf("notify \"ops\" {\n  webhook = %q\n  secret  = \"OPS_KEY\"\n}\n", hook.URL),
		ServiceExtra: "  alarm \"errors\" {\n    metric     = \"error_rate\"\n    comparison = \">\"\n    threshold  = 0.2\n    for        = \"1s\"\n    notify     = [\"ops\"]\n  }\n"}
	c.writeManifest(m)
	mustState(t, c.deploy(service, "1"), "Success")
	// The channel's signing key is an environment-wide secret.
	if out, err := c.cli("secret", "put", "--env", env, "OPS_KEY="+key); err != nil {
		t.Fatalf("secret put: %v\n%s", err, out)
	}
	stop := c.load(service)
	defer stop()
	waitFor(t, 60*time.Second, "alarm errors in ALERT", func() bool {
		out, _ := c.cli("alarms", "--env", env)
		return regexp.MustCompile(`dev/hello +errors +ALERT +0\.[2-9]\d* +\S+ \S+ +error_rate > 0.2 for 1s`).MatchString(out)
	})
	out, err := c.cli("status", service, "--env", env)
	if err != nil || !strings.Contains(out, "hello in dev  ALERT: errors") {
		t.Errorf("status does not mark the alarm: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the notification delivered at its third attempt", func() bool {
		out, _ := c.cli("alarms", "--env", env, "--deliveries")
		return regexp.MustCompile(`dev/hello +errors +ops +delivered +3 `).MatchString(out)
	})
	mu.Lock()
	if len(got) != 1 || got[0]["state"] != "ALERT" || got[0]["service"] != "hello" || got[0]["previous"] != "OK" {
		t.Errorf("notifications received: %v", got)
	}
	mu.Unlock()
	// A healthy release: the alarm is OK again, and the channel is told once.
	m.Env = nil
	c.writeManifest(m)
	mustState(t, c.deploy(service, "2"), "Success")
	// (On a loaded machine the window may hold no request of the new
	// group for a moment: ALERT → NO_DATA → OK is told as it happens.)
	waitFor(t, 60*time.Second, "the OK notification", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 2 && got[len(got)-1]["state"] == "OK"
	})
	mu.Lock()
	last := got[len(got)-1]
	if len(got) == 2 && last["previous"] != "ALERT" || len(got) == 3 && (got[1]["state"] != "NO_DATA" || last["previous"] != "NO_DATA") || len(got) > 3 {
		t.Errorf("notifications received: %v, want one ALERT then one OK (a NO_DATA between at most)", got)
	}
	mu.Unlock()
	out, _ = c.cli("events", "--env", env, "--service", service)
	if !strings.Contains(out, "alarm errors of e2e/dev/hello: OK → ALERT (error_rate 0.") {
		t.Errorf("no event of the alarm firing:\n%s", out)
	}
	if strings.Contains(out, key) {
		t.Error("the signing key is in the events")
	}
}
