package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
)

// loadWorkspace loads manifests and prints their errors; a nil workspace
// means the caller should fail with the returned error. Warnings are
// printed by the commands that judge manifests (validate, deploy) only.
func loadWorkspace(g *Globals, paths []string) (*config.Workspace, error) {
	return loadWorkspaceWarn(g, paths, false)
}

func loadWorkspaceWarn(g *Globals, paths []string, warnings bool) (*config.Workspace, error) {
	ws, diags := config.LoadWith(loadOptions(), paths...)
	if !warnings {
		diags = config.OnlyErrors(diags)
	}
	if len(diags) > 0 {
		var files map[string]*hcl.File
		if ws != nil {
			files = ws.Files()
		}
		if err := config.WriteDiagnostics(g.Stderr, files, diags, g.Color()); err != nil {
			return nil, err
		}
	}
	if diags.HasErrors() {
		return nil, silentError{ExitFailure}
	}
	return ws, nil
}

func newValidateCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check runway.hcl and service manifests",
		Long: `Validate reads runway.hcl (in PATH or its parents) and every *.service.hcl under
PATH, resolves each service for each environment and reports every problem with
file:line:col, the source line, what is wrong and how to fix it. Exits 1 when
anything is invalid.`,
		Example: "  runway validate\n  runway validate examples/hello\n  runway validate runway.hcl web/web.service.hcl --output json",
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, diags := config.LoadWith(loadOptions(), args...)
			if g.JSON() {
				out := map[string]any{"valid": !diags.HasErrors(), "diagnostics": config.DiagnosticsJSON(diags)}
				if ws != nil {
					out["project"] = ws.Project.Name
					out["services"] = serviceNames(ws)
					out["environments"] = ws.Project.EnvironmentNames()
				}
				if err := writeJSON(g, out); err != nil {
					return err
				}
				if diags.HasErrors() {
					return silentError{ExitFailure}
				}
				return nil
			}
			if _, err := loadWorkspaceWarn(g, args, true); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "valid: project %q, %d environment(s) (%s), %d service(s) (%s)\n",
				ws.Project.Name, len(ws.Project.Environments), strings.Join(ws.Project.EnvironmentNames(), ", "),
				len(ws.Services), strings.Join(serviceNames(ws), ", "))
			return nil
		},
	}
}

func serviceNames(ws *config.Workspace) []string {
	out := []string{}
	for _, s := range ws.Services {
		out = append(out, s.Name)
	}
	return out
}

func writeJSON(g *Globals, v any) error {
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func newConfigCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect resolved configuration"}
	var env, dir string
	show := &cobra.Command{
		Use:   "show SERVICE --env ENV",
		Short: "Print a service's fully resolved manifest for one environment",
		Long: `Show deep-merges the service's environment override over its base, applies every
default and prints the result: exactly what a release to that environment uses.`,
		Example: "  runway config show hello --env production\n  runway config show hello --env production --output json --dir examples/hello",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required: name the environment, such as --env production")
			}
			ws, err := loadWorkspace(g, []string{dir})
			if err != nil {
				return err
			}
			svc, diags := ws.Resolve(args[0], env)
			if diags.HasErrors() {
				_ = config.WriteDiagnostics(g.Stderr, ws.Files(), diags, g.Color())
				return silentError{ExitFailure}
			}
			if g.JSON() {
				return writeJSON(g, svc)
			}
			return writeFlat(g, svc)
		},
	}
	show.Flags().StringVarP(&env, "env", "e", "", "environment to resolve for (required)")
	show.Flags().StringVar(&dir, "dir", ".", "project directory to read manifests from")
	cmd.AddCommand(show)
	return cmd
}

// writeFlat prints a value as sorted "path = value" lines, easy to read and grep.
func writeFlat(g *Globals, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	for _, l := range config.Flatten(b) {
		fmt.Fprintln(g.Stdout, l)
	}
	return nil
}

func newProjectCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "project", Short: "Create the project, register it on the server and inspect it"}
	var name string
	cmd.AddCommand(&cobra.Command{
		Use:     "init [DIR]",
		Short:   "Write runway.hcl with development, staging and production environments",
		Example: "  runway project init\n  runway project init ./myapp --name myapp",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := "."
			if len(args) == 1 {
				dir = args[0]
			}
			if name == "" {
				abs, err := filepath.Abs(dir)
				if err != nil {
					return err
				}
				name = projectNameFrom(filepath.Base(abs))
			}
			path := filepath.Join(dir, config.ProjectFileName)
			if err := writeNew(path, config.ProjectScaffold(name)); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "wrote %s (project %q: development, staging, production)\nnext: runway service init NAME --command ./bin/NAME\n", path, name)
			return nil
		},
	})
	cmd.PersistentFlags().StringVar(&name, "name", "", "project name (default: the directory's name)")
	addProjectCmds(g, cmd)
	return cmd
}

// projectNameFrom turns a directory name into a valid project name.
func projectNameFrom(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		case b.Len() > 0:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-")
	if out == "" || out[0] < 'a' {
		out = "app" + out
	}
	return out
}

// writeNew creates a file (and its directory), refusing to overwrite an existing one.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if os.IsExist(err) {
			return fmt.Errorf("%s already exists; Runway does not overwrite it (remove it first or choose another directory)", path)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

func newServiceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Create service manifests"}
	var command, image, dir string
	initCmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Write NAME.service.hcl with every setting documented",
		Example: `  runway service init web --command "./bin/web --port {{PORT}}"
  runway service init api --image registry.example.com/api:1.0.0`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if projectNameFrom(name) != name {
				return UsageErrorf("service name %q: use lower-case letters, digits and dashes, starting with a letter (such as %q)", name, projectNameFrom(name))
			}
			if command != "" && image != "" {
				return UsageErrorf("give --command or --image, not both")
			}
			var argv []string
			if command != "" {
				argv = strings.Fields(command)
			} else if image == "" {
				argv = []string{"./bin/" + name, "--port", "{{PORT}}"}
			}
			path := filepath.Join(dir, name+".service.hcl")
			if err := writeNew(path, config.ServiceScaffold(name, argv, image)); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "wrote %s\nnext: runway validate %s\n", path, dir)
			return nil
		},
	}
	initCmd.Flags().StringVar(&command, "command", "", "program and arguments to run (split on spaces), for process targets")
	initCmd.Flags().StringVar(&image, "image", "", "container image, for container targets")
	initCmd.Flags().StringVar(&dir, "dir", ".", "directory to write the manifest in")
	cmd.AddCommand(initCmd)
	return cmd
}

func newDocsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "docs", Short: "Print generated documentation"}
	cmd.AddCommand(&cobra.Command{
		Use:     "manifest",
		Short:   "Print the Markdown reference of runway.hcl and service manifests",
		Example: "  runway docs manifest > docs/manifest.md",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return config.WriteManifestDocs(g.Stdout)
		},
	})
	return cmd
}
