package server_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// TestTaskSurvivesServerCrash: the server is killed (SIGKILL) while a
// release's pre_deploy hook runs; the hook runs on, the restarted server
// re-attaches to it, and the release succeeds with the hook run once.
func TestTaskSurvivesServerCrash(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	runs := filepath.Join(c.dir, "runs")
	dir := c.writeProject("tasks", "project \"tasks\" {}\nenvironment \"dev\" {}\n", map[string]string{
		"migrating": "  hooks {\n    pre_deploy = [\"/bin/sh\", \"-c\", \"echo started >> " + runs + "; sleep 3; echo finished >> " + runs + "\"]\n  }\n",
	})
	if out, err := c.deployIn(dir, "migrating", "dev", "1"); err != nil {
		t.Fatalf("deploy: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the hook to start", func() bool {
		b, _ := os.ReadFile(runs)
		return strings.Contains(string(b), "started")
	})
	c.killServer()
	c.startServer()
	var rel *apiwire.Release
	waitFor(t, 30*time.Second, "the release to be listed", func() bool {
		list, err := c.api.Releases(context.Background(), apiwire.ReleaseFilter{Project: "tasks", Service: "migrating"})
		if err != nil || len(list) != 1 {
			return false
		}
		rel = list[0]
		return true
	})
	done := c.wait(rel.ID, 60*time.Second)
	mustState(t, done, "Success")
	b, _ := os.ReadFile(runs)
	if got := string(b); got != "started\nfinished\n" {
		t.Errorf("the hook's runs: %q, want it started once and finished", got)
	}
}
