package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newHaltCmd(g *Globals) *cobra.Command {
	var env, reason, project string
	cmd := &cobra.Command{
		Use:     "halt SERVICE --env ENV",
		Short:   "Stop the running release of a service at its next step and roll it back",
		Example: "  runway halt hello --env production --reason 'wrong build'",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := serviceScope(cmd.Context(), g, env, project)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), project, env, args[0])
			if err != nil {
				return err
			}
			if st.InProgress == nil {
				return fmt.Errorf("no release of %s is running in %s", args[0], env)
			}
			if err := c.Halt(cmd.Context(), st.InProgress.ID, reason); err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, map[string]string{"id": st.InProgress.ID, "status": "halt requested"})
			}
			fmt.Fprintf(g.Stdout, "halt requested for release %s; it stops at its next step and rolls back\n", st.InProgress.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the release record")
	projectFlag(cmd, &project)
	return cmd
}
