package cli

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
)

// projectName picks the project a command is about: the flag, else the
// project of the current directory's runway.hcl, else the server's only one.
func projectName(ctx context.Context, c *client.Client, flag string) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if path := config.FindProjectFile("."); path != "" {
		if src, err := os.ReadFile(path); err == nil {
			if p, diags := config.ParseProjectSource(src, path); !diags.HasErrors() {
				return p.Name, nil
			}
		}
	}
	ps, err := c.Projects(ctx)
	if err != nil {
		return "", err
	}
	switch len(ps) {
	case 0:
		return "", errors.New("the server holds no project yet; register one with runway project apply in its root directory")
	case 1:
		return ps[0].Name, nil
	}
	var names []string
	for _, p := range ps {
		names = append(names, p.Name)
	}
	return "", UsageErrorf("the server holds several projects (%s): pass --project, or run the command in a project's directory", strings.Join(names, ", "))
}

// projectFlag adds --project: the project a command is about (default: the
// current directory's, or the server's only project).
func projectFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "project", "p", "", "project (default: the one of runway.hcl in this directory or a parent, or the server's only project)")
}

// serviceScope is the common start of the commands that act on a service
// in an environment (status, releases, rollback, halt): --env is required,
// then the client of the current context and the project (projectName).
func serviceScope(ctx context.Context, g *Globals, env, projectFlag string) (*client.Client, string, error) {
	if env == "" {
		return nil, "", UsageErrorf("--env is required")
	}
	c, err := g.client()
	if err != nil {
		return nil, "", err
	}
	project, err := projectName(ctx, c, projectFlag)
	if err != nil {
		return nil, "", err
	}
	return c, project, nil
}
