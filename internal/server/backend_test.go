package server

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
)

// TestDeployRetriedAfterCrash: a server killed after it mapped a request id
// to a release id but before it recorded the release; the retried request
// records the release under that id, and any further retry returns it.
func TestDeployRetriedAfterCrash(t *testing.T) {
	ctx := context.Background()
	b := newBackend(t)
	req := helloRequest(t, b)
	chosen := store.NewID(time.Now())
	if err := b.st.Put(ctx, nsRequests, req.RequestID, []byte(chosen)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		rel, err := b.Deploy(ctx, req, "admin")
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if rel.ID != chosen {
			t.Fatalf("retry %d made release %s, want %s (the id chosen before the crash)", i, rel.ID, chosen)
		}
	}
	list, err := b.st.ListReleases(ctx, store.ReleaseFilter{Service: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d releases recorded, want 1", len(list))
	}
}

// newBackend is a backend over a real store whose engine only records
// releases (it is closed: nothing runs).
func newBackend(t *testing.T) *backend {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	drivers := engine.Drivers{"local": nil}
	eng := engine.New(st, drivers, engine.Options{})
	eng.Close()
	return &backend{st: st, eng: eng, drivers: drivers, limits: TargetLimits(), log: slog.New(slog.DiscardHandler)}
}

const helloProject = "project \"hello\" {}\nenvironment \"dev\" {}\n"

// helloRequest registers project hello and returns a deploy request of its
// service hello.
func helloRequest(t *testing.T, b *backend) apiwire.DeployRequest {
	t.Helper()
	_, err := b.ApplyProject(context.Background(), "hello", apiwire.ApplyProjectRequest{Source: helloProject}, "admin")
	if err != nil {
		t.Fatal(err)
	}
	return apiwire.DeployRequest{Project: "hello", Environment: "dev", Service: "hello", Version: "1",
		Sources:       []apiwire.SourceFile{{Name: "hello.service.hcl", Content: "service \"hello\" {\n  command = [\"hello\"]\n}\n"}},
		ProjectSource: helloProject, Dir: t.TempDir(), RequestID: "01JD3Q8Y7Z5W2X4V6T8R0P2N4A", RequestedAt: time.Now().UTC()}
}

// TestCheckEngine: a docker environment that names another engine than the
// server's is refused, naming both and the flag to fix it; the same engine,
// none named, or another target pass.
func TestCheckEngine(t *testing.T) {
	b := &backend{dockerHost: "unix:///run/podman/podman.sock", dockerSource: "--docker-host"}
	env := func(target, host string) *config.Environment {
		e := &config.Environment{Name: "staging", Target: target}
		if host != "" {
			e.Docker = &config.Docker{Host: host}
		}
		return e
	}
	for _, e := range []*config.Environment{env("docker", ""), env("docker", b.dockerHost), env("local", "unix:///other.sock")} {
		if err := b.checkEngine(e); err != nil {
			t.Errorf("%s %+v: %v", e.Target, e.Docker, err)
		}
	}
	err := b.checkEngine(env("docker", "tcp://10.0.0.5:2376"))
	var p *apiwire.Problem
	if !errors.As(err, &p) || p.Status != 422 || !strings.Contains(p.Detail, "tcp://10.0.0.5:2376 (docker.host)") ||
		!strings.Contains(p.Detail, "unix:///run/podman/podman.sock (from --docker-host)") || !strings.Contains(p.Detail, "--docker-host tcp://10.0.0.5:2376") {
		t.Fatalf("another engine: %v", err)
	}
	if err := (&backend{}).checkEngine(env("docker", "tcp://10.0.0.5:2376")); err != nil {
		t.Errorf("a server without an engine leaves it to NoDriver: %v", err)
	}
}
