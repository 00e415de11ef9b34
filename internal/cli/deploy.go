package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/secrets"
)

func newDeployCmd(g *Globals) *cobra.Command {
	var env, file, version string
	var yes, wait bool
	cmd := &cobra.Command{
		Use:   "deploy [SERVICE] --env ENV",
		Short: "Release a service to an environment with zero downtime",
		Long: `Deploy resolves the service's manifest for the environment, shows what changes
against the running release, asks for confirmation (unless --yes) and submits a
release. With --wait it follows the release step by step and exits 0 only when
the new version serves all traffic. A service with a build block in an
environment of target docker is built first (as runway build does) when its
image's tag is not on the environment's engine; with the environment's
registry, the image is pushed and the release pinned to its digest, so a
rollback runs the same bytes.`,
		Example: `  runway deploy --env staging --yes --wait
  runway deploy hello --env production --version 1.4.0 --file examples/hello/hello.service.hcl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, svc, err := resolveService(g, args, file, env, version, true)
			if err != nil {
				return err
			}
			name := svc.Name
			if svc.Version == "" {
				return UsageErrorf("service %q has no version: set version in its manifest or pass --version", name)
			}
			pinned, err := prepareImage(cmd.Context(), g, ws, env, svc)
			if err != nil {
				return err
			}
			manifest, err := json.Marshal(svc)
			if err != nil {
				return err
			}
			sources, files, err := requestSources(ws, ws.Service(name))
			if err != nil {
				return err
			}
			projectSource, err := os.ReadFile(ws.Project.File)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := c.Status(ctx, ws.Project.Name, env, name)
			if err != nil {
				return err
			}
			changes := diffManifests(st.Current, manifest)
			secretPins := secretChanges(ctx, c, ws.Project.Name, env, name, st.Current, svc.SecretVars())
			if st.Current != nil {
				changes = append(changes, secretPins...)
			}
			if !g.JSON() {
				printPlan(g.Stdout, env, name, svc.Version, st.Current, changes)
				if st.Current == nil && len(secretPins) > 0 {
					fmt.Fprintf(g.Stdout, "Secrets:\n  %s\n", strings.Join(secretPins, "\n  "))
				}
			}
			if !yes {
				if st.Current != nil && len(changes) == 0 {
					fmt.Fprintln(g.Stdout, "nothing changed; deploying anyway makes a new release of the same manifest")
				}
				ok, err := confirm(g, fmt.Sprintf("Deploy %s %s to %s?", name, svc.Version, env))
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("deploy cancelled")
				}
			}
			// The server parses and validates the sources itself, against
			// its own copy of the project; Dir is where commands live on
			// this machine (the local target runs them here).
			rel, err := c.Deploy(ctx, apiwire.DeployRequest{
				Project: ws.Project.Name, Environment: env, Service: name, Version: version,
				Sources: sources, ProjectSource: string(projectSource), Dir: svc.Dir,
				RequestID: newRequestID(), RequestedAt: time.Now().UTC(),
				// Asked above, or --yes: protected environments need it.
				Confirmed: true,
				Image:     pinned,
			})
			if err != nil {
				return serverDiagnostics(g, err, files)
			}
			if !wait {
				if g.JSON() {
					return writeJSON(g, rel)
				}
				fmt.Fprintf(g.Stdout, "release %s submitted (%s %s to %s); follow it with: runway release show %s --wait\n", rel.ID, name, rel.Version, env, rel.ID)
				return nil
			}
			return followRelease(ctx, g, c, rel.ID)
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment to deploy to (required)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "service manifest (default: the one in the current directory)")
	cmd.Flags().StringVar(&version, "version", "", "version to release (default: the manifest's version)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the release and exit 0 only on success")
	return cmd
}

// secretChanges says which secret versions the release will pin against
// those the running release pins ("DATABASE_URL: v3 → v4"), never values.
// The server pins them itself at submit, by the same rule (secrets.Resolve).
func secretChanges(ctx context.Context, c *client.Client, project, env, service string, current *apiwire.Release, vars map[string]string) []string {
	old := map[string]apiwire.SecretPin{}
	if current != nil {
		for _, p := range current.Secrets {
			old[p.Name] = p
		}
	}
	if len(vars) == 0 && len(old) == 0 {
		return nil
	}
	var out []string
	var pins []secrets.Pin
	var missing []string
	if len(vars) > 0 {
		list, err := c.Secrets(ctx, project, env, service)
		if err != nil {
			return []string{fmt.Sprintf("secrets: versions not shown (%v)", err)}
		}
		var infos []secrets.Info
		for _, s := range list {
			infos = append(infos, secrets.Info{Ref: secrets.Ref{Service: s.Service, Key: s.Key}, Version: s.Version})
		}
		pins, missing = secrets.Resolve(service, vars, infos)
	}
	label := func(p secrets.Pin) string { return p.Label() }
	for _, p := range pins {
		prev, ok := old[p.Name]
		delete(old, p.Name)
		switch {
		case current == nil:
			out = append(out, fmt.Sprintf("%s: %s", p.Name, label(p)))
		case !ok:
			out = append(out, fmt.Sprintf("%s: (new) %s", p.Name, label(p)))
		case prev.Version != p.Version || prev.Service != p.Service || prev.Key != p.Key:
			out = append(out, fmt.Sprintf("%s: %s → %s", p.Name, label(secrets.Pin{Key: prev.Key, Service: prev.Service, Version: prev.Version}), label(p)))
		}
	}
	for _, k := range missing {
		out = append(out, fmt.Sprintf("%s: no value (the server refuses the release; put it with runway secret put %s --env %s %s=...)", k, service, env, k))
	}
	gone := make([]string, 0, len(old))
	for name := range old {
		gone = append(gone, name)
	}
	sort.Strings(gone)
	for _, name := range gone {
		out = append(out, fmt.Sprintf("%s: v%d → (removed)", name, old[name].Version))
	}
	return out
}

// pickService chooses the service to deploy: the argument, or the only
// service in the given file or current directory.
func pickService(ws *config.Workspace, args []string, file string) (string, error) {
	if len(args) == 1 {
		if ws.Service(args[0]) == nil {
			return "", fmt.Errorf("no manifest defines service %q; found %s", args[0], strings.Join(serviceNames(ws), ", "))
		}
		return args[0], nil
	}
	var local []string
	for _, s := range ws.Services {
		if file != "" || filepath.Dir(s.File) == "." {
			local = append(local, s.Name)
		}
	}
	if len(local) == 0 {
		local = serviceNames(ws)
	}
	if len(local) != 1 {
		return "", UsageErrorf("name the service to deploy: found %s", strings.Join(local, ", "))
	}
	return local[0], nil
}

// diffManifests lists changed fields between the running release's manifest
// and the new one (config.Diff), leaving out where the files are.
func diffManifests(current *apiwire.Release, next []byte) []string {
	var old []byte
	if current != nil {
		old = current.Manifest
	}
	return config.Diff(old, next, "dir", "file")
}

// requestSources returns the service's manifest file as a deploy request
// carries it: named relative to the project's root (what the server's
// diagnostics will name), and the map from that name to the parsed local file.
func requestSources(ws *config.Workspace, m *config.ServiceManifest) ([]apiwire.SourceFile, map[string]*hcl.File, error) {
	content, err := os.ReadFile(m.File)
	if err != nil {
		return nil, nil, err
	}
	abs, err := filepath.Abs(m.File)
	if err != nil {
		return nil, nil, err
	}
	name, err := filepath.Rel(ws.Project.Dir, abs)
	if err != nil || strings.HasPrefix(name, "..") {
		name = filepath.Base(abs)
	}
	name = filepath.ToSlash(name)
	files := map[string]*hcl.File{name: ws.Files()[m.File], config.ProjectFileName: ws.Files()[ws.Project.File]}
	return []apiwire.SourceFile{{Name: name, Content: string(content)}}, files, nil
}
