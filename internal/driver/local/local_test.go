package local

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/target"
)

// TestTaskTemplates: a task's arguments expand template values written with
// or without spaces inside the braces, as instances' do (runenv.ExpandAll);
// the local driver once left "{{ RELEASE_ID }}" as written.
func TestTaskTemplates(t *testing.T) {
	lt := startLocal(t)
	ref := target.ServiceRef{Project: "acme", Environment: "staging", Service: "web"}
	spec := lt.spec(ref)
	spec.Version = "1.4.2"
	task := target.Task{ID: "01JTASKTEMPLATES0000000001/pre_deploy", Name: "pre_deploy", Ref: ref, Release: "01JTASKTEMPLATES0000000001", Spec: spec,
		Command: []string{"sh", "-c", `echo "release=$1 version=$2 service=$3 env=$4 keep=$5"`, "sh", "{{ RELEASE_ID }}", "{{VERSION}}", "{{  SERVICE_NAME }}", "{{ENVIRONMENT }}", "{ {PORT} }"}}
	ctx := context.Background()
	if err := lt.d.StartTask(ctx, task); err != nil {
		t.Fatal(err)
	}
	var st target.TaskStatus
	for deadline := time.Now().Add(10 * time.Second); !st.Done; time.Sleep(5 * time.Millisecond) {
		var err error
		if st, err = lt.d.ObserveTask(ctx, ref, task.ID); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("the task did not end")
		}
	}
	want := "release=01JTASKTEMPLATES0000000001 version=1.4.2 service=web env=staging keep={ {PORT} }"
	if st.Result.ExitCode != 0 || !strings.Contains(st.Result.Output, want) {
		t.Fatalf("task ended %d with %q, want output %q", st.Result.ExitCode, st.Result.Output, want)
	}
}

// TestValidate: the local target names every problem of a release it cannot
// run, with the program resolved as the agent will resolve it.
func TestValidate(t *testing.T) {
	lt := startLocal(t)
	ref := target.ServiceRef{Project: "acme", Environment: "staging", Service: "web"}
	ctx := context.Background()
	if err := lt.d.Validate(ctx, ref, lt.spec(ref)); err != nil {
		t.Fatalf("a runnable release: %v", err)
	}
	notExec := filepath.Join(lt.dir, "data.txt")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		modify func(*config.Service)
		want   []string
	}{
		{"no command", func(s *config.Service) { s.Command = nil }, []string{"needs a command"}},
		{"missing program", func(s *config.Service) { s.Command = []string{"./bin/web"} },
			[]string{`command "./bin/web" does not exist (looked at ` + filepath.Join(lt.dir, "bin/web") + "; build it first?)"}},
		{"not on PATH", func(s *config.Service) { s.Command = []string{"no-such-program-xyz"} }, []string{`"no-such-program-xyz" not found in PATH`}},
		{"not executable", func(s *config.Service) { s.Command = []string{"./data.txt"} }, []string{"is not executable", "chmod +x " + notExec}},
		{"work dir", func(s *config.Service) { s.WorkingDir = "nope" }, []string{"working directory " + filepath.Join(lt.dir, "nope") + " does not exist"}},
		{"hook", func(s *config.Service) { s.Hooks.PreDeploy = []string{"./migrate"} }, []string{`pre_deploy command "./migrate" does not exist`}},
		{"every problem at once", func(s *config.Service) { s.Command = []string{"./bin/web"}; s.Hooks.PreDeploy = []string{"./migrate"} },
			[]string{`command "./bin/web"`, `pre_deploy command "./migrate"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := lt.spec(ref)
			tc.modify(s)
			err := lt.d.Validate(ctx, ref, s)
			if err == nil {
				t.Fatal("Validate accepted it")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
