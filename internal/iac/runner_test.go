package iac

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindBinary(t *testing.T) {
	have := func(names ...string) func(string) (string, error) {
		return func(n string) (string, error) {
			for _, h := range names {
				if h == n {
					return "/usr/bin/" + n, nil
				}
			}
			return "", exec.ErrNotFound
		}
	}
	if p, _ := FindBinary(have("tofu", "terraform")); p != "/usr/bin/tofu" {
		t.Errorf("both: %s, want tofu", p)
	}
	if p, _ := FindBinary(have("terraform")); p != "/usr/bin/terraform" {
		t.Errorf("terraform only: %s", p)
	}
	_, err := FindBinary(have())
	if !errors.Is(err, ErrNoBinary) || !strings.Contains(err.Error(), "opentofu.org") {
		t.Errorf("none: %v", err)
	}
}

// offlineRoot is a root that needs no provider and keeps local state, so the
// real binary runs end to end without a network.
const offlineRoot = `terraform {
  required_version = ">= 1.6.0"
}

variable "release" {
  description = "A value to record."
  type        = string
  default     = "%s"
}

resource "terraform_data" "marker" {
  input = var.release
}

output "marker" {
  description = "The recorded value."
  value       = terraform_data.marker.output
}
`

// TestRunnerEndToEnd runs plan and apply through terraform-exec with the
// real tofu or terraform binary, in dependency order.
func TestRunnerEndToEnd(t *testing.T) {
	bin, err := FindBinary(exec.LookPath)
	if err != nil {
		t.Skip("skipping: neither tofu nor terraform is installed (CI installs terraform)")
	}
	rc := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(rc, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TF_CLI_CONFIG_FILE", rc)
	t.Setenv("CHECKPOINT_DISABLE", "1")

	dir := t.TempDir()
	write := func(root, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(dir, root), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, root, "main.tf"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("bootstrap", strings.Replace(offlineRoot, "%s", "one", 1))
	write("production/us-east-2/network", strings.Replace(offlineRoot, "%s", "two", 1))
	roots := []Root{{Dir: "bootstrap"}, {Dir: "production/us-east-2/network", DependsOn: []string{"bootstrap"}}}

	var progress, stdout bytes.Buffer
	r := &Runner{Bin: bin, Dir: dir, Stdout: &stdout, Stderr: &stdout, Progress: &progress}
	ctx := context.Background()

	sums, err := r.Plan(ctx, roots)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, stdout.String())
	}
	if len(sums) != 2 || sums[0].Add != 1 || sums[1].Add != 1 || sums[0].Applied {
		t.Fatalf("plan summaries: %+v", sums)
	}
	if !strings.Contains(progress.String(), "==> plan bootstrap\n    bootstrap: 1 to add, 0 to change, 0 to destroy\n") {
		t.Errorf("progress:\n%s", progress.String())
	}

	var asked []string
	r.Confirm = func(s Summary) (bool, error) { asked = append(asked, s.String()); return true, nil }
	sums, err = r.Apply(ctx, roots)
	if err != nil {
		t.Fatalf("apply: %v\n%s", err, stdout.String())
	}
	if len(asked) != 2 || !sums[0].Applied || !sums[1].Applied {
		t.Fatalf("apply: asked %v, summaries %+v", asked, sums)
	}
	if strings.Index(progress.String(), "==> apply bootstrap") > strings.Index(progress.String(), "==> apply production/us-east-2/network") {
		t.Error("roots applied out of order")
	}
	if _, err := os.Stat(filepath.Join(dir, "bootstrap", "terraform.tfstate")); err != nil {
		t.Errorf("no local state after apply: %v", err)
	}

	// Applied: nothing left to do, nothing asked.
	asked = nil
	sums, err = r.Apply(ctx, roots)
	if err != nil || sums[0].Changes() || sums[1].Changes() || len(asked) != 0 {
		t.Fatalf("second apply: %v %+v asked %v", err, sums, asked)
	}

	// A change declined stops before the next root.
	write("bootstrap", strings.Replace(offlineRoot, "%s", "three", 1))
	write("production/us-east-2/network", strings.Replace(offlineRoot, "%s", "four", 1))
	r.Confirm = func(Summary) (bool, error) { return false, nil }
	sums, err = r.Apply(ctx, roots)
	if !errors.Is(err, ErrDeclined) || len(sums) != 0 || !strings.Contains(err.Error(), "root bootstrap") {
		t.Fatalf("declined: %v %+v", err, sums)
	}

	// A broken root stops the run: the next root is not planned.
	write("bootstrap", "resource \"terraform_data\" \"x\" {\n  input = var.missing\n}\n")
	progress.Reset()
	_, err = r.Plan(ctx, roots)
	if err == nil || !strings.Contains(err.Error(), "root bootstrap") {
		t.Fatalf("broken root: %v", err)
	}
	if strings.Contains(progress.String(), "production") {
		t.Errorf("ran the next root after a failure:\n%s", progress.String())
	}
}
