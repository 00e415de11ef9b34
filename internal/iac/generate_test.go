package iac

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/netplan"
)

// testInput is a project like examples/saas, built by hand so this package's
// tests do not depend on the config loader.
func testInput(t *testing.T) Input {
	t.Helper()
	p := &config.Project{
		Name: "saas", Domain: "example.com", File: "runway.hcl",
		Environments: []*config.Environment{
			{Name: "development", Target: "local"},
			{Name: "staging", Target: "aws", Region: "us-east-2"},
			{Name: "production", Target: "aws", Region: "us-east-2", Protected: true},
		},
	}
	in, err := netplan.InputFrom(p)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := netplan.Allocate(in, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc := func(name string, secrets ...string) *config.Service {
		s := &config.Service{Name: name, Image: "ghcr.io/example/" + name, Port: 8080, Secrets: secrets}
		s.Health.Kind, s.Health.Path = "http", "/healthz"
		s.Health.HealthyThreshold, s.Health.UnhealthyThreshold = 2, 3
		s.Deploy.Strategy = "rolling"
		s.Deploy.DrainTimeout = config.Duration{Duration: 30 * time.Second}
		return s
	}
	web := svc("web")
	web.Deploy.Strategy, web.Deploy.BlueGreen.Preview = "blue_green", true
	web.Hosts = []string{"www.example.com"}
	services := []*config.Service{web, svc("api", "DATABASE_URL", "STRIPE_KEY"), svc("worker")}
	return Input{Project: p, Plan: plan, Services: map[string][]*config.Service{"staging": services, "production": services}}
}

func TestGenerateReferencesAndSyntax(t *testing.T) {
	tree, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"bootstrap/main.runway.tf", "modules/network/main.runway.tf",
		"production/us-east-2/network/main.runway.tf", "production/us-east-2/platform/outputs.runway.tf",
		"staging/us-east-2/services/api/main.runway.tf", "staging/us-east-2/services/api/README.md", "README.md",
	} {
		if _, ok := tree[want]; !ok {
			t.Errorf("tree lacks %s", want)
		}
	}
	if fs := CheckReferences(tree.TFFiles()); len(fs) > 0 {
		for _, f := range fs {
			t.Error(f)
		}
	}
}

func TestGenerateIdempotent(t *testing.T) {
	a, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != len(b) {
		t.Fatal("different trees")
	}
	for p := range a {
		if string(a[p]) != string(b[p]) {
			t.Errorf("%s differs between runs", p)
		}
	}
	dir := t.TempDir()
	if _, err := Write(dir, a, nil, false); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)
	rep, err := Write(dir, b, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Written) != 0 || len(rep.Unchanged) != len(a) {
		t.Errorf("rerun wrote %d files, %d unchanged of %d", len(rep.Written), len(rep.Unchanged), len(a))
	}
	after := snapshot(t, dir)
	for p, v := range before {
		if after[p] != v {
			t.Errorf("%s changed on rerun", p)
		}
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTerraformFmtClean(t *testing.T) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		if bin, err = exec.LookPath("tofu"); err != nil {
			t.Skip("neither terraform nor tofu on PATH: fmt check skipped (CI installs terraform)")
		}
	}
	tree, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, tree, nil, false); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", dir)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+writeEmpty(t))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s fmt -check: %v\n%s", bin, err, out)
	}
}

func writeEmpty(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "terraformrc")
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriteHandEdits(t *testing.T) {
	tree, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, tree, nil, false); err != nil {
		t.Fatal(err)
	}
	edited := filepath.Join(dir, "production/us-east-2/network/main.runway.tf")
	b, _ := os.ReadFile(edited)
	if err := os.WriteFile(edited, append(b, []byte("# tweak\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(dir, "production/us-east-2/network/extra.tf")
	if err := os.WriteFile(mine, []byte("# mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// A file taken over: same name, header removed.
	taken := filepath.Join(dir, "staging/us-east-2/network/variables.runway.tf")
	if err := os.WriteFile(taken, []byte("# taken over\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	_, err = Write(dir, tree, nil, false)
	var ee *EditedError
	if !errors.As(err, &ee) || len(ee.Paths) != 1 || ee.Paths[0] != "production/us-east-2/network/main.runway.tf" {
		t.Fatalf("Write = %v, want EditedError for the network main file", err)
	}
	if !strings.Contains(err.Error(), "--force") {
		t.Errorf("error does not mention --force: %v", err)
	}
	rep, err := Write(dir, tree, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Written) != 1 || len(rep.Kept) != 1 || rep.Kept[0] != "staging/us-east-2/network/variables.runway.tf" {
		t.Errorf("forced write: %+v", rep)
	}
	if got, _ := os.ReadFile(mine); string(got) != "# mine\n" {
		t.Error("hand-written file touched")
	}
	if got, _ := os.ReadFile(taken); string(got) != "# taken over\n" {
		t.Error("taken-over file touched")
	}

	// A service removed from the project: its generated root goes, unless edited.
	in := testInput(t)
	in.Services["staging"] = in.Services["staging"][:2]
	smaller, err := Generate(in)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = Write(dir, smaller, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Removed) != 6 {
		t.Errorf("removed %v, want the 6 files of staging's worker", rep.Removed)
	}
}

func TestGenerateErrors(t *testing.T) {
	in := testInput(t)
	in.Project.Domain = ""
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), "has no domain") {
		t.Errorf("no domain: %v", err)
	}
	in = testInput(t)
	in.Env = "development"
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), "not an aws environment") {
		t.Errorf("local env: %v", err)
	}
	in = testInput(t)
	in.Project.Environments[1].Name = "1staging"
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), `environment name "1staging"`) {
		t.Errorf("bad env name: %v", err)
	}
	in = testInput(t)
	in.Services["staging"][0] = &config.Service{Name: "Web App"}
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), `service name "Web App"`) {
		t.Errorf("bad service name: %v", err)
	}
	in = testInput(t)
	in.Project.Network.Tiers = []string{"private", "data"}
	if _, err := Generate(in); err == nil || !strings.Contains(err.Error(), `no "public" tier`) {
		t.Errorf("no public tier: %v", err)
	}
}

// TestReferenceCheckCatchesBrokenWiring: a root reading an output its
// dependency does not have, and a module output that does not exist.
func TestReferenceCheckCatchesBrokenWiring(t *testing.T) {
	tree, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	files := tree.TFFiles()
	p := "production/us-east-2/platform/main.runway.tf"
	files[p] = []byte(strings.Replace(string(files[p]), "outputs.vpc_cidr", "outputs.vpc_cidr_block", 1))
	o := "production/us-east-2/network/outputs.runway.tf"
	files[o] = []byte(strings.Replace(string(files[o]), "module.network.vpc_id", "module.network.id", 1))
	var got []string
	for _, f := range CheckReferences(files) {
		got = append(got, f.String())
	}
	want := []string{
		`production/us-east-2/network/outputs.runway.tf:3: reference: module.network has no output "id" (modules/network)`,
		`production/us-east-2/platform/main.runway.tf:34: reference: root production/us-east-2/network has no output "vpc_cidr_block"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
