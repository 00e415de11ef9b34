package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/fsutil"
)

// addProjectCmds adds apply, show and list to `runway project`.
func addProjectCmds(g *Globals, cmd *cobra.Command) {
	var dir string
	var yes bool
	apply := &cobra.Command{
		Use:   "apply",
		Short: "Register the project on the server, or update its environments and policy",
		Long: `Apply sends runway.hcl to the server, which from then on decides with it what a
release may do: environments, their targets, protection, allowed hosts and
notification channels. It shows what changes against the server's copy and
asks before applying (unless --yes). It is the only way environment policy
changes; deploys made against a runway.hcl that differs are refused.`,
		Example: "  runway project apply\n  runway project apply --dir examples/hello --yes",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			return applyProject(cmd.Context(), g, c, dir, yes)
		},
	}
	apply.Flags().StringVar(&dir, "dir", ".", "the project's directory (runway.hcl in it or a parent)")
	apply.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")

	show := &cobra.Command{
		Use:     "show [NAME]",
		Short:   "Print the server's copy of a project's runway.hcl",
		Example: "  runway project show\n  runway project show acme --output json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			name, err = projectName(cmd.Context(), c, name)
			if err != nil {
				return err
			}
			p, err := c.Project(cmd.Context(), name)
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, p)
			}
			fmt.Fprintf(g.Stderr, "# project %s, version %d, applied by %s at %s\n", p.Name, p.Version, p.UpdatedBy, p.UpdatedAt.Local().Format(time.RFC3339))
			fmt.Fprint(g.Stdout, p.Source)
			return nil
		},
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the projects the server holds",
		Example: "  runway project list",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			ps, err := c.Projects(cmd.Context())
			if err != nil {
				return err
			}
			return render(g, ps, projectsTable)
		},
	}
	cmd.AddCommand(apply, show, list)
}

// applyProject shows the difference between dir's runway.hcl and the
// server's copy, asks, and applies.
func applyProject(ctx context.Context, g *Globals, c *client.Client, dir string, yes bool) error {
	path := config.FindProjectFile(dir)
	if path == "" {
		return fmt.Errorf("no %s in %s or its parents; run runway project init first", config.ProjectFileName, dir)
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	def, diags := config.ParseProjectSource(src, path)
	if len(diags) > 0 {
		f, _ := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
		_ = config.WriteDiagnostics(g.Stderr, map[string]*hcl.File{path: f}, diags, g.Color())
	}
	if diags.HasErrors() {
		return silentError{ExitFailure}
	}
	cur, err := c.Project(ctx, def.Name)
	base := 0
	var changes []string
	next, _ := json.Marshal(def)
	switch {
	case client.IsKind(err, apiwire.KindUnknownProject):
		if !g.JSON() {
			fmt.Fprintf(g.Stdout, "Project %s is new on this server: %s\n", def.Name, environmentsLine(def))
		}
	case err != nil:
		return err
	default:
		base = cur.Version
		changes = config.Diff(cur.Definition, next)
		if len(changes) == 0 {
			if g.JSON() {
				return writeJSON(g, cur)
			}
			fmt.Fprintf(g.Stdout, "project %s is up to date on the server (version %d)\n", def.Name, cur.Version)
			if string(src) == cur.Source {
				return nil
			}
			// Only comments or layout differ: store the new text too.
		} else if !g.JSON() {
			fmt.Fprintf(g.Stdout, "Changes to project %s (server version %d, applied by %s):\n", def.Name, cur.Version, cur.UpdatedBy)
			for _, ch := range changes {
				fmt.Fprintf(g.Stdout, "  %s\n", ch)
			}
		}
	}
	if !yes && (base == 0 || len(changes) > 0) {
		ok, err := confirm(g, fmt.Sprintf("Apply project %s?", def.Name))
		if err != nil {
			return err
		}
		if !ok {
			return errors.New("apply cancelled")
		}
	}
	p, err := c.ApplyProject(ctx, def.Name, apiwire.ApplyProjectRequest{Source: string(src), BaseVersion: base,
		RequestID: newRequestID(), RequestedAt: time.Now().UTC()})
	if err != nil {
		return serverDiagnostics(g, err, map[string]*hcl.File{})
	}
	if g.JSON() {
		return writeJSON(g, p)
	}
	fmt.Fprintf(g.Stdout, "applied project %s (version %d)\n", p.Name, p.Version)
	return nil
}

func environmentsLine(p *config.Project) string {
	var out []string
	for _, e := range p.Environments {
		s := e.Name + " (" + e.Target
		if e.Protected {
			s += ", protected"
		}
		out = append(out, s+")")
	}
	return strings.Join(out, ", ")
}

// upRegisterProject registers the project of the directory `runway up`
// starts in, the first time (when the server does not hold it yet), so the
// quick start needs no separate apply. A project the server holds already is
// left alone: changing policy takes an explicit `runway project apply`.
func upRegisterProject(ctx context.Context, g *Globals, serverURL, tokenFile string) {
	path := config.FindProjectFile(".")
	if path == "" {
		return
	}
	tok, err := fsutil.ReadToken(tokenFile)
	if err != nil {
		fmt.Fprintf(g.Stderr, "warning: cannot read the admin token to register %s: %v\n", path, err)
		return
	}
	c, err := client.New(serverURL, tok)
	if err != nil {
		return
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return
	}
	def, diags := config.ParseProjectSource(src, path)
	if diags.HasErrors() {
		fmt.Fprintf(g.Stderr, "warning: %s is not valid, so its project was not registered (runway validate shows why; then runway project apply)\n", path)
		return
	}
	if _, err := c.Project(ctx, def.Name); !client.IsKind(err, apiwire.KindUnknownProject) {
		return
	}
	p, err := c.ApplyProject(ctx, def.Name, apiwire.ApplyProjectRequest{Source: string(src), RequestID: newRequestID(), RequestedAt: time.Now().UTC()})
	if err != nil {
		fmt.Fprintf(g.Stderr, "warning: registering project %s failed: %v\n", def.Name, err)
		return
	}
	fmt.Fprintf(g.Stdout, "Registered project %s from %s (version %d): %s\n", p.Name, path, p.Version, environmentsLine(def))
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
