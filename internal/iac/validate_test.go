package iac

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// providerMirror is where these machines keep the prebuilt AWS provider
// (absent on users' machines: the test then skips, saying why).
const providerMirror = "/opt/tf-plugins"

// TestTerraformValidateRealProvider runs `terraform init` against a
// filesystem mirror of the real AWS provider and `terraform validate` on
// every generated root: the generated code must type-check against the
// provider's real schema, for the provider versions it declares.
func TestTerraformValidateRealProvider(t *testing.T) {
	bin, err := exec.LookPath("terraform")
	if err != nil {
		t.Skip("terraform is not on PATH: the real-schema check needs it (CI machines have it)")
	}
	if _, err := os.Stat(filepath.Join(providerMirror, "registry.terraform.io", "hashicorp", "aws")); err != nil {
		t.Skipf("no AWS provider mirror at %s (%v): the real-schema check needs the prebuilt provider", providerMirror, err)
	}
	tree, err := Generate(testInput(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := Write(dir, tree, nil, false); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(t.TempDir(), "terraformrc")
	conf := "provider_installation {\n  filesystem_mirror {\n    path    = \"" + providerMirror + "\"\n    include = [\"registry.terraform.io/hashicorp/*\"]\n  }\n  direct {\n    exclude = [\"registry.terraform.io/hashicorp/*\"]\n  }\n}\n"
	if err := os.WriteFile(rc, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	roots := rootsOf(t, dir)
	if len(roots) < 3 {
		t.Fatalf("found %d roots in the generated tree: %v", len(roots), roots)
	}
	env := append(os.Environ(), "TF_CLI_CONFIG_FILE="+rc, "TF_IN_AUTOMATION=1", "CHECKPOINT_DISABLE=1",
		"TF_PLUGIN_CACHE_DIR="+t.TempDir(), "TF_DATA_DIR=")
	for _, root := range roots {
		rel, _ := filepath.Rel(dir, root)
		t.Run(rel, func(t *testing.T) {
			run := func(args ...string) {
				t.Helper()
				cmd := exec.Command(bin, args...)
				cmd.Dir, cmd.Env = root, env
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("terraform %s in %s: %v\n%s", strings.Join(args, " "), rel, err, out)
				}
			}
			run("init", "-backend=false", "-input=false", "-no-color")
			run("validate", "-no-color")
			// The provider is linked, not copied (675 MB per root otherwise).
			if st, err := os.Lstat(filepath.Join(root, ".terraform", "providers", "registry.terraform.io", "hashicorp", "aws")); err == nil && st.Size() > 100<<20 {
				t.Errorf("the provider was copied into %s", rel)
			}
		})
	}
}

// rootsOf lists the generated root modules: directories with a
// terraform block naming a backend (the modules below them have none).
func rootsOf(t *testing.T, dir string) []string {
	t.Helper()
	seen := map[string]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".tf") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), "backend \"") {
			seen[filepath.Dir(p)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}
