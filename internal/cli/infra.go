package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/iac"
)

// infraFlags are shared by the infra subcommands.
type infraFlags struct {
	env, dir, out string
}

func (f *infraFlags) add(cmd *cobra.Command, envHelp string) {
	cmd.Flags().StringVarP(&f.env, "env", "e", "", envHelp)
	cmd.Flags().StringVar(&f.dir, "dir", ".", "project directory (where runway.hcl is)")
	cmd.Flags().StringVar(&f.out, "out", "", "directory of the generated code (default: infra/ next to runway.hcl)")
}

func (f *infraFlags) outDir(ws *config.Workspace) string {
	if f.out != "" {
		return f.out
	}
	return filepath.Join(projectDir(ws), "infra")
}

func newInfraCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "infra",
		Short: "Generate, check, plan and apply the OpenTofu/Terraform of aws environments",
		Long: `Infra writes readable OpenTofu/Terraform for the environments of runway.hcl whose
target is aws (one account per environment, a planned network, DNS and
certificates, a Fargate cluster behind a load balancer, and what each service
needs), checks it, and plans or applies it with tofu (or terraform).`,
	}
	cmd.AddCommand(newInfraGenerateCmd(g), newInfraPlanCmd(g, false), newInfraPlanCmd(g, true), newInfraCheckCmd(g), newInfraOutputsCmd(g))
	return cmd
}

// generateInput loads the workspace, the address plan and every service
// resolved for every aws environment.
func generateInput(g *Globals, f *infraFlags, locked bool) (*config.Workspace, iac.Input, error) {
	ws, plan, err := loadPlan(g, f.dir, planOptions{locked: locked})
	if err != nil {
		return nil, iac.Input{}, err
	}
	if err := checkEnv(ws, f.env); err != nil {
		return nil, iac.Input{}, err
	}
	in := iac.Input{Project: ws.Project, Plan: plan, Services: map[string][]*config.Service{}, Env: f.env}
	for _, e := range iac.AWSEnvironments(ws.Project) {
		for _, m := range ws.Services {
			s, diags := ws.Resolve(m.Name, e.Name)
			if diags.HasErrors() {
				_ = config.WriteDiagnostics(g.Stderr, ws.Files(), diags, g.Color())
				return nil, iac.Input{}, silentError{ExitFailure}
			}
			in.Services[e.Name] = append(in.Services[e.Name], s)
		}
	}
	return ws, in, nil
}

func newInfraGenerateCmd(g *Globals) *cobra.Command {
	var f infraFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: "Write OpenTofu/Terraform for the aws environments",
		Long: `Generate writes infra/ next to runway.hcl: bootstrap/ (accounts, Identity
Center roles, the state bucket, CI roles), <environment>/<region>/network,
platform and services/<service>, each a root that calls the shared modules in
modules/. Generated files are named *.runway.tf (plus README.md files) and start
with a header holding a checksum: Runway never touches other files, refuses to
overwrite a generated file edited by hand unless --force, and removes generated
files it no longer produces. Running it twice changes nothing.`,
		Example: "  runway infra generate\n  runway infra generate --dir examples/saas --env production\n  runway infra generate --out ../infra-repo --force",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, in, err := generateInput(g, &f, false)
			if err != nil {
				return err
			}
			tree, err := iac.Generate(in)
			if err != nil {
				return err
			}
			var scope []string
			if f.env != "" {
				scope = []string{"README.md", "bootstrap", "modules", f.env}
			}
			out := f.outDir(ws)
			rep, err := iac.Write(out, tree, scope, force)
			if err != nil {
				return err
			}
			return render(g, generated{Dir: out, Kept: nonNil(rep.Kept), Removed: nonNil(rep.Removed), Unchanged: len(rep.Unchanged),
				Written: nonNil(rep.Written), env: f.env}, generatedTable)
		},
	}
	f.add(cmd, "generate only this environment's roots (plus bootstrap and modules)")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite generated files edited by hand")
	return cmd
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func newInfraPlanCmd(g *Globals, apply bool) *cobra.Command {
	var f infraFlags
	var yes bool
	verb, short := "plan", "Plan the roots of an environment with tofu (or terraform), in dependency order"
	if apply {
		verb, short = "apply", "Apply the roots of an environment with tofu (or terraform), root by root"
	}
	cmd := &cobra.Command{
		Use:   verb + " --env ENV",
		Short: short,
		Long: `Runs tofu (preferred) or terraform through terraform-exec in bootstrap, then the
environment's network, platform and services roots: init, plan, and for apply
the saved plan, after showing what will change and asking (unless --yes). It
streams the tool's output, summarizes adds/changes/destroys per root and stops
at the first failure. Credentials are the tool's usual ones (AWS_PROFILE, ...).`,
		Example: fmt.Sprintf("  runway infra %s --env staging\n  runway infra %s --env production --dir examples/saas", verb, verb),
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.env == "" {
				return UsageErrorf("--env is required: name the environment, such as --env staging")
			}
			ws, in, err := generateInput(g, &f, true)
			if err != nil {
				return err
			}
			if e := ws.Project.Environment(f.env); e.Target != "aws" {
				return UsageErrorf("--env %s: target is %s; infra manages aws environments only", f.env, e.Target)
			}
			out := f.outDir(ws)
			if stale, err := outOfDate(in, out); err != nil {
				return err
			} else if stale != "" {
				return fmt.Errorf("%s is not what runway infra generate writes now (%s differs); run runway infra generate and review the diff first", displayPath(out), stale)
			}
			bin, err := iac.FindBinary(iac.LookPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			toolOut := g.Stdout
			if g.JSON() {
				toolOut = g.Stderr
			}
			r := &iac.Runner{Bin: bin, Dir: out, Stdout: toolOut, Stderr: g.Stderr, Progress: g.Stderr}
			if apply && !yes {
				r.Confirm = confirmer(g)
			}
			roots := iac.Roots(ws.Project, in.Services, f.env)
			fmt.Fprintf(g.Stderr, "%s %d root(s) of %s with %s\n", verb, len(roots), f.env, bin)
			var sums []iac.Summary
			if apply {
				sums, err = r.Apply(ctx, roots)
			} else {
				sums, err = r.Plan(ctx, roots)
			}
			if g.JSON() {
				if jerr := writeJSON(g, map[string]any{"roots": sums, "error": errString(err)}); jerr != nil {
					return jerr
				}
			} else if len(sums) > 0 {
				fmt.Fprintln(g.Stdout, "\nSummary:")
				for _, s := range sums {
					mark := ""
					if s.Applied {
						mark = " (applied)"
					}
					fmt.Fprintf(g.Stdout, "  %s%s\n", s, mark)
				}
			}
			if errors.Is(err, iac.ErrDeclined) {
				return fmt.Errorf("stopped: %w; nothing after that root was applied", err)
			}
			return err
		},
	}
	f.add(cmd, "environment whose roots to run (required)")
	if apply {
		cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking")
	}
	return cmd
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// confirmer asks on the terminal before each root with changes.
func confirmer(g *Globals) func(iac.Summary) (bool, error) {
	rd := bufio.NewReader(g.Stdin)
	return func(s iac.Summary) (bool, error) {
		fmt.Fprintf(g.Stderr, "Apply %s? [y/N] ", s)
		line, err := rd.ReadString('\n')
		if err != nil && !(errors.Is(err, io.EOF) && line != "") {
			return false, fmt.Errorf("no answer on standard input; rerun with --yes to apply without asking")
		}
		a := strings.ToLower(strings.TrimSpace(line))
		return a == "y" || a == "yes", nil
	}
}

// outOfDate compares the generated files of env's roots, bootstrap and the
// modules with the files on disk and returns the first path that differs
// ("" when all match). Files taken over by hand (no header) do not count.
func outOfDate(in iac.Input, out string) (string, error) {
	tree, err := iac.Generate(in)
	if err != nil {
		return "", err
	}
	for _, p := range tree.Paths() {
		cur, err := os.ReadFile(filepath.Join(out, filepath.FromSlash(p)))
		if err != nil {
			return p, nil
		}
		if string(cur) != string(iac.WithHeader(p, tree[p])) && iac.Generated(cur) {
			return p, nil
		}
	}
	return "", nil
}

func newInfraCheckCmd(g *Globals) *cobra.Command {
	var f infraFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check generated and hand-written OpenTofu/Terraform for common mistakes",
		Long: `Check reads every .tf file under the infra directory and reports, with
file:line: references to undeclared variables, locals, resources, modules or
outputs; security groups open to 0.0.0.0/0 except on 80 and 443; buckets and
log groups without encryption; roots without a state backend; secrets written
in plain text. Exits 1 when it finds anything.`,
		Example: "  runway infra check\n  runway infra check --dir examples/saas\n  runway infra check --out ./terraform --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := f.out
			if out == "" {
				ws, err := loadWorkspace(g, []string{f.dir})
				if err != nil {
					return err
				}
				out = f.outDir(ws)
			}
			files, err := iac.ReadTFFiles(out)
			if err != nil {
				return err
			}
			if len(files) == 0 {
				return fmt.Errorf("no .tf files under %s; run runway infra generate first", displayPath(out))
			}
			findings := append(iac.CheckReferences(files), iac.Check(files)...)
			for i := range findings {
				findings[i].File = filepath.Join(displayPath(out), findings[i].File)
			}
			if g.JSON() {
				if findings == nil {
					findings = []iac.Finding{}
				}
				if err := writeJSON(g, findings); err != nil {
					return err
				}
			} else {
				for _, fd := range findings {
					fmt.Fprintln(g.Stdout, fd)
				}
			}
			if len(findings) > 0 {
				if !g.JSON() {
					fmt.Fprintf(g.Stderr, "%d finding(s) in %d file(s)\n", len(findings), len(files))
				}
				return silentError{ExitFailure}
			}
			if !g.JSON() {
				fmt.Fprintf(g.Stdout, "%s: %d file(s), no findings\n", displayPath(out), len(files))
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&f.dir, "dir", ".", "project directory (where runway.hcl is)")
	cmd.Flags().StringVar(&f.out, "out", "", "directory to check (default: infra/ next to runway.hcl)")
	return cmd
}
