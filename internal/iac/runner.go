package iac

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/terraform-exec/tfexec"
)

// ErrNoBinary means neither tofu nor terraform is installed.
var ErrNoBinary = errors.New(`neither "tofu" nor "terraform" is on PATH.
Install OpenTofu (preferred): https://opentofu.org/docs/intro/install/
  Debian/Ubuntu: see the deb repository instructions there, then apt-get install tofu
  macOS: brew install opentofu
or Terraform: https://developer.hashicorp.com/terraform/install`)

// FindBinary returns the path of tofu, or else of terraform. lookPath is
// exec.LookPath outside tests.
func FindBinary(lookPath func(string) (string, error)) (string, error) {
	for _, name := range []string{"tofu", "terraform"} {
		if p, err := lookPath(name); err == nil {
			return p, nil
		}
	}
	return "", ErrNoBinary
}

// Summary is what a plan of one root would do.
type Summary struct {
	Root    string `json:"root"`
	Add     int    `json:"add"`
	Change  int    `json:"change"`
	Destroy int    `json:"destroy"`
	Applied bool   `json:"applied"`
}

// Changes reports whether the plan changes anything.
func (s Summary) Changes() bool { return s.Add+s.Change+s.Destroy > 0 }

func (s Summary) String() string {
	if !s.Changes() {
		return fmt.Sprintf("%s: no changes", s.Root)
	}
	return fmt.Sprintf("%s: %d to add, %d to change, %d to destroy", s.Root, s.Add, s.Change, s.Destroy)
}

// Runner plans and applies roots under Dir with the binary Bin, streaming
// the tool's output to Stdout and Stderr.
type Runner struct {
	Bin            string
	Dir            string
	Stdout, Stderr io.Writer
	// Confirm is asked before applying a root that has changes; nil applies
	// without asking.
	Confirm func(Summary) (bool, error)
	// Progress receives one line per step ("plan production/us-east-2/network").
	Progress io.Writer
}

// ErrDeclined means the user answered no to Confirm.
var ErrDeclined = errors.New("apply declined")

// Plan plans every root in order and stops at the first failure.
func (r *Runner) Plan(ctx context.Context, roots []Root) ([]Summary, error) {
	return r.run(ctx, roots, false)
}

// Apply plans and applies every root in order, asking Confirm before each
// root with changes, and stops at the first failure or refusal.
func (r *Runner) Apply(ctx context.Context, roots []Root) ([]Summary, error) {
	return r.run(ctx, roots, true)
}

func (r *Runner) run(ctx context.Context, roots []Root, apply bool) ([]Summary, error) {
	var out []Summary
	for _, root := range roots {
		s, err := r.one(ctx, root.Dir, apply)
		if err != nil {
			return out, fmt.Errorf("root %s: %w", root.Dir, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (r *Runner) progress(format string, args ...any) {
	if r.Progress != nil {
		fmt.Fprintf(r.Progress, format+"\n", args...)
	}
}

// streamedError keeps the first line of an error whose details (the tool's
// stderr) were already streamed to the user.
type streamedError struct{ err error }

func (e streamedError) Error() string {
	msg := e.err.Error()
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i] + " (output above)"
	}
	return msg
}

func (e streamedError) Unwrap() error { return e.err }

func (r *Runner) one(ctx context.Context, root string, apply bool) (Summary, error) {
	s := Summary{Root: root}
	dir := filepath.Join(r.Dir, filepath.FromSlash(root))
	tf, err := tfexec.NewTerraform(dir, r.Bin)
	if err != nil {
		return s, err
	}
	// Ask the version before streaming: terraform-exec checks it once and
	// would print its JSON to Stdout.
	if _, _, err := tf.Version(ctx, false); err != nil {
		return s, fmt.Errorf("%s version: %w", r.Bin, err)
	}
	if r.Stdout != nil {
		tf.SetStdout(r.Stdout)
	}
	if r.Stderr != nil {
		tf.SetStderr(r.Stderr)
	}
	r.progress("==> init %s", root)
	if err := tf.Init(ctx); err != nil {
		return s, fmt.Errorf("init: %w", streamedError{err})
	}
	r.progress("==> plan %s", root)
	planFile := filepath.Join(dir, ".terraform", "runway.tfplan")
	if err := os.MkdirAll(filepath.Dir(planFile), 0o755); err != nil {
		return s, err
	}
	if _, err := tf.Plan(ctx, tfexec.Out(planFile)); err != nil {
		return s, fmt.Errorf("plan: %w", streamedError{err})
	}
	plan, err := tf.ShowPlanFile(ctx, planFile)
	if err != nil {
		return s, fmt.Errorf("read plan: %w", err)
	}
	for _, rc := range plan.ResourceChanges {
		if rc.Change == nil {
			continue
		}
		a := rc.Change.Actions
		switch {
		case a.Replace():
			s.Add++
			s.Destroy++
		case a.Create():
			s.Add++
		case a.Update():
			s.Change++
		case a.Delete():
			s.Destroy++
		}
	}
	r.progress("    %s", s)
	if !apply || !s.Changes() {
		return s, nil
	}
	if r.Confirm != nil {
		ok, err := r.Confirm(s)
		if err != nil {
			return s, err
		}
		if !ok {
			return s, ErrDeclined
		}
	}
	r.progress("==> apply %s", root)
	if err := tf.Apply(ctx, tfexec.DirOrPlan(planFile)); err != nil {
		return s, fmt.Errorf("apply: %w", streamedError{err})
	}
	s.Applied = true
	return s, nil
}

// LookPath is exec.LookPath, for callers of FindBinary.
var LookPath = exec.LookPath

// Outputs reads the outputs of root (`output -json`) from its state: the
// state of the backend it was applied with. A root never initialized here
// is initialized first (with its backend: the tool's usual credentials).
// Sensitive outputs are returned as well; callers decide what to print.
func (r *Runner) Outputs(ctx context.Context, root string) (map[string]json.RawMessage, error) {
	dir := filepath.Join(r.Dir, filepath.FromSlash(root))
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("root %s: %w (run runway infra generate, then runway infra apply)", root, err)
	}
	tf, err := tfexec.NewTerraform(dir, r.Bin)
	if err != nil {
		return nil, err
	}
	if r.Stderr != nil {
		tf.SetStderr(r.Stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, ".terraform")); errors.Is(err, os.ErrNotExist) {
		r.progress("==> init %s", root)
		if err := tf.Init(ctx); err != nil {
			return nil, fmt.Errorf("root %s: init: %w", root, streamedError{err})
		}
	}
	outs, err := tf.Output(ctx)
	if err != nil {
		return nil, fmt.Errorf("root %s: output: %w", root, err)
	}
	m := make(map[string]json.RawMessage, len(outs))
	for k, o := range outs {
		m[k] = o.Value
	}
	return m, nil
}
