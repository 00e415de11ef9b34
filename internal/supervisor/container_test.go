package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/podmantest"
)

// engine returns a client of the package's podman and the tests' hello
// image; it skips, saying why, without podman.
func engine(t *testing.T) (*container.Engine, string) {
	t.Helper()
	pe := podmantest.Shared(t, podmantest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := container.Connect(ctx, pe.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, pe.HelloImage(t)
}

func containerSpec(name, image string, n int) agentapi.GroupSpec {
	s := helloSpec(name, "", n)
	s.Command, s.WorkDir, s.Image, s.ContainerPort = nil, "", image, 8080
	s.Env = map[string]string{"GREETING": "{{SERVICE_NAME}}-{{ENVIRONMENT}}"}
	return s
}

// agentContainers lists the containers labelled with the agent's id.
func agentContainers(t *testing.T, e *container.Engine, agent string) []container.Container {
	t.Helper()
	cs, err := e.List(context.Background(), map[string]string{LabelAgent: agent})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func containerIDs(cs []container.Container) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

func get(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %d", resp.StatusCode)
	}
	return string(b), err
}

// TestContainerGroupOutlivesTheAgent: a group with an image runs its
// instances as containers on the instances' ports, health-checked by the
// supervisor; an agent that stops without stopping them leaves them
// running, the next one re-adopts the same containers (healthy at once),
// their logs are in the instance's log file, and deleting the group
// removes them.
func TestContainerGroupOutlivesTheAgent(t *testing.T) {
	e, image := engine(t)
	opts := testOptions(t)
	opts.Engine = e
	s, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	agent := s.AgentID()
	t.Cleanup(func() {
		for _, c := range agentContainers(t, e, agent) {
			_ = e.Remove(context.Background(), c.ID)
		}
	})
	if _, _, err := s.CreateGroup(containerSpec("web-c1", image, 2)); err != nil {
		t.Fatal(err)
	}
	healthy := func(s *Supervisor) func() bool {
		return func() bool {
			st, err := s.Group("web-c1")
			return err == nil && st.Counts[agentapi.StateHealthy] == 2
		}
	}
	waitFor(t, time.Minute, "2 healthy containers", healthy(s))
	st, _ := s.Group("web-c1")
	for _, in := range st.Instances {
		body, err := get("http://" + in.Addr + "/")
		if err != nil || !strings.Contains(body, "hello web-staging from v1.2.3") {
			t.Fatalf("GET %s: %q, %v", in.Addr, body, err)
		}
	}
	before := containerIDs(agentContainers(t, e, agent))
	if len(before) != 2 {
		t.Fatalf("%d containers labelled with the agent, want 2", len(before))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, c := range agentContainers(t, e, agent) {
		if !c.Running {
			t.Fatalf("container %s stopped with the agent (%s)", c.Name, c.State)
		}
	}

	s2 := openSup(t, opts)
	st, err = s2.Group("web-c1")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range st.Instances {
		if !in.Adopted || in.State != agentapi.StateHealthy {
			t.Fatalf("instance %s after the restart: adopted %v, %s; want adopted and healthy at once", in.ID, in.Adopted, in.State)
		}
	}
	waitFor(t, time.Minute, "2 healthy adopted containers", healthy(s2))
	if after := containerIDs(agentContainers(t, e, agent)); !slices.Equal(after, before) {
		t.Fatalf("containers %v after the restart, want the same %v", after, before)
	}
	var lines []string
	if err := s2.ReadLogs(context.Background(), "web-c1", st.Instances[0].ID, agentapi.LogQuery{Filter: "listening"}, func(l agentapi.LogLine) error {
		lines = append(lines, l.Text)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(lines) != 1 {
		t.Fatalf("log lines with 'listening': %q, want exactly the one the container wrote", lines)
	}

	done, err := s2.DeleteGroup("web-c1", 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("group not deleted within a minute")
	}
	if left := agentContainers(t, e, agent); len(left) != 0 {
		t.Fatalf("containers left after the group's deletion: %v", containerIDs(left))
	}
}

// TestContainerCrashLoop: a container that exits at once is restarted with
// backoff, its exit status and output kept, and reported crash looping.
func TestContainerCrashLoop(t *testing.T) {
	e, image := engine(t)
	opts := testOptions(t)
	opts.Engine = e
	s := openSup(t, opts)
	agent := s.AgentID()
	t.Cleanup(func() {
		for _, c := range agentContainers(t, e, agent) {
			_ = e.Remove(context.Background(), c.ID)
		}
	})
	spec := containerSpec("crash-c1", image, 1)
	spec.Env["REQUIRE"] = "DATABASE_URL"
	if _, _, err := s.CreateGroup(spec); err != nil {
		t.Fatal(err)
	}
	var in agentapi.InstanceStatus
	waitFor(t, time.Minute, "a crash loop", func() bool {
		st, err := s.Group("crash-c1")
		if err != nil || len(st.Instances) != 1 {
			return false
		}
		in = st.Instances[0]
		return in.CrashLoop
	})
	if in.LastExit != "exit status 1" {
		t.Fatalf("last exit %q, want exit status 1", in.LastExit)
	}
	var lines []string
	waitFor(t, 30*time.Second, "the FATAL line in the instance's log", func() bool {
		lines = nil
		_ = s.ReadLogs(context.Background(), "crash-c1", in.ID, agentapi.LogQuery{Filter: "FATAL"}, func(l agentapi.LogLine) error {
			lines = append(lines, l.Stream+" "+l.Text)
			return nil
		})
		return len(lines) > 0
	})
	if lines[0] != "stderr FATAL: DATABASE_URL is not set" {
		t.Fatalf("log line %q", lines[0])
	}
}

// TestContainerGroupRefused: an image group is refused by an agent without
// an engine, and with an exec health check, naming the field.
func TestContainerGroupRefused(t *testing.T) {
	s := openSup(t, testOptions(t))
	_, _, err := s.CreateGroup(containerSpec("img", "localhost/x:1", 1))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "image" || !strings.Contains(fe.Msg, "--docker-host") {
		t.Fatalf("CreateGroup without an engine: %v", err)
	}
	spec := containerSpec("img", "localhost/x:1", 1)
	spec.Health = agentapi.HealthCheck{Type: agentapi.HealthExec, Command: []string{"true"}}
	if err := NormalizeSpec(&spec); !errors.As(err, &fe) || fe.Field != "health.type" {
		t.Fatalf("exec check on a container: %v", err)
	}
	spec = containerSpec("img", "localhost/x:1", 1)
	spec.ContainerPort = 0
	if err := NormalizeSpec(&spec); !errors.As(err, &fe) || fe.Field != "container_port" {
		t.Fatalf("no container port: %v", err)
	}
}
