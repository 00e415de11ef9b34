package cli

import (
	"sort"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newStatusCmd(g *Globals) *cobra.Command {
	var env, project string
	cmd := &cobra.Command{
		Use:     "status [SERVICE] --env ENV",
		Short:   "Show what runs: groups, versions, health, traffic, release in progress",
		Example: "  runway status --env staging\n  runway status hello --env staging --output json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := serviceScope(cmd.Context(), g, env, project)
			if err != nil {
				return err
			}
			services := args
			if len(services) == 0 {
				// Every service with a release in the environment.
				list, err := c.Releases(cmd.Context(), apiwire.ReleaseFilter{Project: project, Environment: env, Limit: 1000})
				if err != nil {
					return err
				}
				seen := map[string]bool{}
				for _, r := range list {
					if !seen[r.Service] {
						seen[r.Service] = true
						services = append(services, r.Service)
					}
				}
				sort.Strings(services)
			}
			var all []*apiwire.ServiceStatus
			for _, svc := range services {
				st, err := c.Status(cmd.Context(), project, env, svc)
				if err != nil {
					return err
				}
				all = append(all, st)
			}
			if g.JSON() {
				if len(args) == 1 {
					return writeJSON(g, all[0])
				}
				if all == nil {
					all = []*apiwire.ServiceStatus{}
				}
				return writeJSON(g, all)
			}
			return statusTable(g.Stdout, env, all)
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	projectFlag(cmd, &project)
	return cmd
}
