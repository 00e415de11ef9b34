package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
)

func logText(t *testing.T, s *Supervisor, group, id string, q agentapi.LogQuery) string {
	t.Helper()
	var b strings.Builder
	if err := s.ReadLogs(context.Background(), group, id, q, func(l agentapi.LogLine) error {
		b.WriteString(l.Stream + " " + l.Text + "\n")
		return nil
	}); err != nil {
		t.Fatalf("ReadLogs %s/%s: %v", group, id, err)
	}
	return b.String()
}

// The logs of a deleted group's instances, and of an instance removed by a
// scale down, stay readable by group and instance, across a restart of the
// supervisor, and are listed with the group.
func TestLogsOutliveTheirGroup(t *testing.T) {
	mark := testMark(t)
	opts := testOptions(t)
	s := openSup(t, opts)
	spec := misbehaveSpec("crashy", mark, 2, "--crash-after", "50ms")
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	g, _ := s.Group("crashy")
	ids := []string{g.Instances[0].ID, g.Instances[1].ID}
	waitFor(t, 30*time.Second, "both instances crashed once", func() bool {
		for _, id := range ids {
			if in, err := s.Instance("crashy", id); err != nil || in.Restarts == 0 {
				return false
			}
		}
		return true
	})
	if _, err := s.ScaleGroup(context.Background(), "crashy", 1, 0); err != nil {
		t.Fatal(err)
	}
	done, _ := s.DeleteGroup("crashy", 0)
	<-done
	if _, err := s.Group("crashy"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("group after deletion: %v", err)
	}
	for _, id := range ids {
		if !s.HasLogs("crashy", id) {
			t.Errorf("logs of %s gone with its group", id)
		}
		if got := logText(t, s, "crashy", id, agentapi.LogQuery{Filter: "crashing", Follow: true}); !strings.Contains(got, "stderr misbehave: crashing") {
			t.Errorf("logs of %s after the deletion: %q", id, got)
		}
	}
	lg := s.LogGroups("staging", "web")
	if len(lg) != 1 || lg[0].Group != "crashy" || lg[0].DeletedAt.IsZero() || len(lg[0].Instances) != 2 {
		t.Fatalf("log groups: %+v", lg)
	}
	for _, li := range lg[0].Instances {
		if li.RemovedAt.IsZero() {
			t.Errorf("instance %s of the deleted group not marked removed", li.ID)
		}
	}

	// A new supervisor on the same data dir still serves them.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx, true); err != nil {
		t.Fatal(err)
	}
	s2 := openSup(t, opts)
	if got := logText(t, s2, "crashy", ids[0], agentapi.LogQuery{Tail: 1, Filter: "crashing"}); !strings.Contains(got, "crashing") {
		t.Errorf("logs after a restart: %q", got)
	}
	if s2.HasLogs("crashy", "0000000g") || s2.HasLogs("../crashy", ids[0]) {
		t.Error("HasLogs accepts what is not an instance id or a group name")
	}
	if err := s2.ReadLogs(context.Background(), "crashy", "deadbeef", agentapi.LogQuery{}, func(agentapi.LogLine) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("logs of an unknown instance: %v", err)
	}
}

// Per service, the logs of deleted groups are kept for the RetainGroups
// most recently deleted and for at most RetainFor; another service's are
// counted apart, and a live group's logs are never pruned.
func TestDeletedGroupLogsPruned(t *testing.T) {
	opts := testOptions(t)
	s := openSup(t, opts)
	base := time.Now().UTC()
	write := func(group, service string, deletedAgo time.Duration) {
		dir := s.logDir(group)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		m := agentapi.LogGroup{Format: LogMetaFormat, Group: group, Service: service, Environment: "production",
			ReleaseID: group, CreatedAt: base.Add(-deletedAgo - time.Minute), DeletedAt: base.Add(-deletedAgo),
			Instances: []agentapi.LogInstance{{ID: "0a0b0c0d", RemovedAt: base.Add(-deletedAgo)}}}
		b, _ := json.Marshal(m)
		if err := os.WriteFile(filepath.Join(dir, logMetaFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0a0b0c0d.log"), []byte(base.Format(time.RFC3339Nano)+" stderr FATAL: DATABASE_URL is not set\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 12 {
		write(fmt.Sprintf("web-r%02d", i), "web", time.Duration(i)*time.Hour) // r00 newest
	}
	write("web-old", "web-other", 8*24*time.Hour)
	write("api-r1", "api", 6*24*time.Hour)
	s.pruneLogs(base)
	kept := map[string]bool{}
	for _, m := range s.LogGroups("production", "") {
		kept[m.Group] = true
	}
	for i := range 12 {
		g := fmt.Sprintf("web-r%02d", i)
		if want := i < RetainGroups; kept[g] != want {
			t.Errorf("%s kept = %v, want %v", g, kept[g], want)
		}
		if _, err := os.Stat(s.logDir(g)); (err == nil) != (i < RetainGroups) {
			t.Errorf("%s: directory after pruning: %v", g, err)
		}
	}
	if kept["web-old"] || !kept["api-r1"] {
		t.Errorf("older than 7 days pruned, younger kept: web-old %v, api-r1 %v", kept["web-old"], kept["api-r1"])
	}
	if got := logText(t, s, "api-r1", "0a0b0c0d", agentapi.LogQuery{}); !strings.Contains(got, "DATABASE_URL is not set") {
		t.Errorf("kept log: %q", got)
	}
}

// Within a live group, the logs of its RetainGroups most recently removed
// instances are kept besides those of its live ones; older ones go.
func TestRemovedInstanceLogsCapped(t *testing.T) {
	mark := testMark(t)
	s := openSup(t, testOptions(t))
	spec := misbehaveSpec("churn", mark, 1)
	spec.Health = agentapi.HealthCheck{Type: agentapi.HealthNone}
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	var removed []string
	for range RetainGroups + 2 {
		g, err := s.ScaleGroup(context.Background(), "churn", 2, 0)
		if err != nil {
			t.Fatal(err)
		}
		newest := g.Instances[len(g.Instances)-1].ID // scale down stops the newest
		waitFor(t, 30*time.Second, "the new instance's log", func() bool { return s.HasLogs("churn", newest) })
		if _, err := s.ScaleGroup(context.Background(), "churn", 1, 0); err != nil {
			t.Fatal(err)
		}
		removed = append(removed, newest)
	}
	lg := s.LogGroups("staging", "web")
	if len(lg) != 1 || len(lg[0].Instances) != 1+RetainGroups {
		t.Fatalf("log index: %+v, want the live instance and %d removed ones", lg, RetainGroups)
	}
	for i, id := range removed {
		if want := i >= 2; s.HasLogs("churn", id) != want {
			t.Errorf("removed instance %d (%s): logs kept = %v, want %v", i, id, !want, want)
		}
	}
}
