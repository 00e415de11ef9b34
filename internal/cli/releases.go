package cli

import (
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newReleasesCmd(g *Globals) *cobra.Command {
	var env, project string
	var limit int
	cmd := &cobra.Command{
		Use:     "releases SERVICE --env ENV",
		Short:   "List a service's releases, newest first",
		Example: "  runway releases hello --env staging",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := serviceScope(cmd.Context(), g, env, project)
			if err != nil {
				return err
			}
			list, err := c.Releases(cmd.Context(), apiwire.ReleaseFilter{Project: project, Environment: env, Service: args[0], Limit: limit})
			if err != nil {
				return err
			}
			return render(g, list, releasesTable)
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many releases to list")
	projectFlag(cmd, &project)
	return cmd
}
