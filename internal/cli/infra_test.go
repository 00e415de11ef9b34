package cli

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files (and examples/saas/infra)")

const saas = "../../examples/saas"

func run(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var o, e bytes.Buffer
	code = Main(args, strings.NewReader(""), &o, &e)
	return o.String(), e.String(), code
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/cli -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test ./internal/cli -update accepts):\n%s", path, got)
	}
}

// TestSaasGolden: the output of runway netplan and runway dns for
// examples/saas, and the generated tree, which is committed as
// examples/saas/infra so the example always shows what generate writes.
func TestSaasGolden(t *testing.T) {
	lock, err := os.ReadFile(filepath.Join(saas, "runway.lock.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		golden string
		args   []string
	}{
		{"testdata/golden/netplan-saas.txt", []string{"netplan", "--dir", saas, "--locked"}},
		{"testdata/golden/netplan-saas-production.json", []string{"netplan", "--dir", saas, "--locked", "--env", "production", "--output", "json"}},
		{"testdata/golden/dns-saas.txt", []string{"dns", "--dir", saas}},
	} {
		out, errOut, code := run(t, c.args...)
		if code != 0 {
			t.Fatalf("runway %v: exit %d\n%s", c.args, code, errOut)
		}
		golden(t, c.golden, []byte(out))
	}

	out := t.TempDir()
	if _, errOut, code := run(t, "infra", "generate", "--dir", saas, "--out", out); code != 0 {
		t.Fatalf("generate: exit %d\n%s", code, errOut)
	}
	got := readTree(t, out)
	want := readTree(t, filepath.Join(saas, "infra"))
	if *update {
		for p := range want {
			if _, ok := got[p]; !ok {
				os.Remove(filepath.Join(saas, "infra", p))
			}
		}
		for p, b := range got {
			golden(t, filepath.Join(saas, "infra", p), []byte(b))
		}
		want = got
	}
	for p, b := range got {
		if want[p] != b {
			t.Errorf("examples/saas/infra/%s differs from what generate writes (go test ./internal/cli -update)", p)
		}
	}
	for p := range want {
		if _, ok := got[p]; !ok {
			t.Errorf("examples/saas/infra/%s is no longer generated", p)
		}
	}
	if now, _ := os.ReadFile(filepath.Join(saas, "runway.lock.hcl")); !bytes.Equal(now, lock) {
		t.Error("generating changed examples/saas/runway.lock.hcl")
	}

	// The example passes its own checks and terraform fmt.
	if stdout, _, code := run(t, "infra", "check", "--dir", saas); code != 0 {
		t.Errorf("infra check: exit %d\n%s", code, stdout)
	}
	if bin, err := exec.LookPath("terraform"); err == nil {
		cmd := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("terraform fmt -check: %v\n%s", err, b)
		}
	} else {
		t.Log("terraform not on PATH: fmt check skipped")
	}
}

func readTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == ".terraform" {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

func TestInfraPlanNeedsBinary(t *testing.T) {
	dir := t.TempDir()
	copyDir(t, saas, dir)
	t.Setenv("PATH", t.TempDir())
	_, errOut, code := run(t, "infra", "plan", "--env", "production", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, `neither "tofu" nor "terraform" is on PATH`) || !strings.Contains(errOut, "opentofu.org") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	_, errOut, code = run(t, "infra", "plan", "--dir", dir)
	if code != 2 || !strings.Contains(errOut, "--env is required") {
		t.Errorf("no --env: exit %d\n%s", code, errOut)
	}
	_, errOut, code = run(t, "infra", "apply", "--env", "development", "--dir", dir)
	if code != 2 || !strings.Contains(errOut, "target is local") {
		t.Errorf("local env: exit %d\n%s", code, errOut)
	}
}

func copyDir(t *testing.T, from, to string) {
	t.Helper()
	for p, b := range readTree(t, from) {
		dst := filepath.Join(to, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
