package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// browserTestDir holds the Node script and its pinned playwright-core
// (package.json, package-lock.json); .ci/run installs its node_modules.
const browserTestDir = "../dashboard/browsertest"

// chromiumPath is the browser the test drives: $CHROMIUM, else Debian's.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// TestDashboardBrowser runs internal/dashboard/browsertest/dashboard.mjs in
// Chromium against a real server, agent and releases: log in with the link
// of `runway dashboard`, watch a rollback live to Success, halt a canary in
// progress to FailureClean, read logs, alarms, secrets and the audit log, a
// read_only user without buttons and refused by the server, the pages with
// JavaScript off; screenshots compared loosely with docs/screenshots
// (RUNWAY_UPDATE_SCREENSHOTS=1 writes them anew).
func TestDashboardBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath()); err != nil {
		t.Skipf("no Chromium at %s (apt-get install chromium, or set CHROMIUM); .ci/run installs it", chromiumPath())
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("no node on PATH (apt-get install nodejs); .ci/run installs it")
	}
	if _, err := os.Stat(filepath.Join(browserTestDir, "node_modules", "playwright-core", "package.json")); err != nil {
		t.Skipf("playwright-core is not installed: run npm ci --prefix internal/dashboard/browsertest (.ci/run does)")
	}
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{})
	mustState(t, c.deploy(service, "1"), "Success")
	mustState(t, c.deploy(service, "2"), "Success")
	long := strings.Replace(canarySteps, "1500ms", "120s", 1)
	c.writeManifest(manifest{Service: "slow", Strategy: "canary", Canary: long, Timeout: "240s"})
	mustState(t, c.deploy("slow", "1"), "Success")
	stop := c.load("slow")
	halt := c.submit("slow", "2")
	waitFor(t, 60*time.Second, "the canary to take traffic", func() bool {
		st, err := c.api.Status(context.Background(), projectName, env, "slow")
		return err == nil && len(st.Routes) == 2
	})
	out, err := c.cli("user", "create", "viewer", "--role", "read_only", "--output", "json")
	if err != nil {
		t.Fatalf("runway user create: %v", err)
	}
	var viewer apiwire.UserCreated
	if err := json.Unmarshal([]byte(out), &viewer); err != nil {
		t.Fatal(err)
	}
	shots, err := filepath.Abs("../../docs/screenshots")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "dashboard.mjs")
	cmd.Dir = browserTestDir
	update := "0"
	if os.Getenv("RUNWAY_UPDATE_SCREENSHOTS") == "1" {
		update = "1"
	}
	cmd.Env = append(os.Environ(), "RUNWAY_BASE=http://"+c.serverAddr, "RUNWAY_LOGIN="+c.loginLink(), "RUNWAY_RO_TOKEN="+viewer.Token,
		"RUNWAY_HALT="+halt.ID, "RUNWAY_SHOTS="+shots, "RUNWAY_UPDATE="+update, "CHROMIUM="+chromiumPath(), "TEST_MARK="+c.mark)
	res, err := cmd.CombinedOutput()
	// The script never prints the link or a token; this is belt and braces.
	text := strings.ReplaceAll(string(res), viewer.Token, "rwy_…")
	t.Logf("browser test:\n%s", text)
	if err != nil {
		t.Fatalf("the browser test failed: %v", err)
	}
	noFailures(t, "halted canary", stop())
	done := c.wait(halt.ID, 60*time.Second)
	mustState(t, done, "FailureClean")
	if !strings.Contains(done.Error, "halted in the browser test") {
		t.Errorf("halted release's error %q lacks the reason typed in the browser", done.Error)
	}
}
