package fake_test

import (
	"context"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
	"github.com/runwayhq/runway/internal/target/fake"
)

// TestSpec: the fake does what the manifest's env says.
func TestSpec(t *testing.T) {
	ctx := context.Background()
	ref := target.ServiceRef{Environment: "test", Service: "web"}
	start := func(t *testing.T, env map[string]string, count int) (*fake.Target, string) {
		f := fake.New(fake.Options{})
		t.Cleanup(f.Close)
		spec := &config.Service{Name: "web", Env: env}
		if err := f.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: "web-r1", Release: "r1", Spec: spec, Count: count}); err != nil {
			t.Fatal(err)
		}
		return f, "web-r1"
	}
	until := func(t *testing.T, what string, cond func(target.GroupStatus) bool, f *fake.Target, g string) time.Duration {
		t.Helper()
		begin := time.Now()
		for {
			st, err := f.ObserveGroup(ctx, ref, g)
			if err != nil {
				t.Fatal(err)
			}
			if cond(st) {
				return time.Since(begin)
			}
			if time.Since(begin) > 10*time.Second {
				t.Fatalf("%s: not within 10 s (%+v)", what, st)
			}
			<-time.After(time.Millisecond)
		}
	}
	t.Run("FAKE_BOOT", func(t *testing.T) {
		f, g := start(t, map[string]string{"FAKE_BOOT": "200ms"}, 1)
		if took := until(t, "healthy", func(s target.GroupStatus) bool { return s.Healthy == 1 }, f, g); took < 150*time.Millisecond {
			t.Errorf("healthy after %s, want about 200ms", took)
		}
	})
	t.Run("FAKE_HEALTH=crash", func(t *testing.T) {
		f, g := start(t, map[string]string{"FAKE_HEALTH": "crash", "FAKE_CRASH_LINE": "no database"}, 1)
		until(t, "crashes counted", func(s target.GroupStatus) bool { return s.Terminated >= 3 && s.Healthy == 0 }, f, g)
		rep, err := f.CrashReport(ctx, ref, g)
		if err != nil || rep.Instance == "" || rep.Lines[len(rep.Lines)-1] != "FATAL: no database" {
			t.Errorf("CrashReport = %+v, %v", rep, err)
		}
	})
	t.Run("FAKE_CRASH_AFTER", func(t *testing.T) {
		f, g := start(t, map[string]string{"FAKE_CRASH_AFTER": "5"}, 1)
		until(t, "healthy", func(s target.GroupStatus) bool { return s.Healthy == 1 }, f, g)
		if err := f.SetRoutes(ctx, ref, []strategy.Route{{Group: g, Weight: 1}}); err != nil {
			t.Fatal(err)
		}
		// Its requests make it crash every 5, and it boots again.
		until(t, "crashes after requests", func(s target.GroupStatus) bool { return s.Terminated >= 2 }, f, g)
		until(t, "healthy again", func(s target.GroupStatus) bool { return s.Healthy == 1 }, f, g)
	})
	t.Run("FAKE_ERROR_RATE", func(t *testing.T) {
		f, g := start(t, map[string]string{"FAKE_ERROR_RATE": "0.5"}, 1)
		until(t, "healthy", func(s target.GroupStatus) bool { return s.Healthy == 1 }, f, g)
		if err := f.SetRoutes(ctx, ref, []strategy.Route{{Group: g, Weight: 1}}); err != nil {
			t.Fatal(err)
		}
		var w strategy.WindowStats
		for w.Requests < 400 {
			var err error
			if w, err = f.WindowStats(ctx, ref, g, time.Minute); err != nil {
				t.Fatal(err)
			}
			<-time.After(time.Millisecond)
		}
		if rate := float64(w.Errors) / float64(w.Requests); rate < 0.4 || rate > 0.6 {
			t.Errorf("error rate %.2f, want about 0.5", rate)
		}
	})
	t.Run("FAKE_DRAIN", func(t *testing.T) {
		f, g := start(t, map[string]string{"FAKE_DRAIN": "1s"}, 2)
		until(t, "healthy", func(s target.GroupStatus) bool { return s.Healthy == 2 }, f, g)
		// Each stop drains 1 s, bounded by the call's drain.
		for _, c := range []struct {
			count       int
			drain       time.Duration
			least, most time.Duration
		}{{1, time.Minute, 900 * time.Millisecond, 5 * time.Second}, {0, 50 * time.Millisecond, 40 * time.Millisecond, 800 * time.Millisecond}} {
			begin := time.Now()
			if err := f.ScaleGroup(ctx, ref, g, c.count, c.drain); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(begin); took < c.least || took > c.most {
				t.Errorf("scale to %d with drain %s took %s, want %s to %s", c.count, c.drain, took, c.least, c.most)
			}
		}
	})
	t.Run("FAKE_INVALID", func(t *testing.T) {
		f := fake.New(fake.Options{})
		t.Cleanup(f.Close)
		if err := f.Validate(ctx, ref, &config.Service{Env: map[string]string{"FAKE_INVALID": "no image"}}); err == nil {
			t.Error("Validate passed")
		}
	})
}
