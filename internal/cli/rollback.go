package cli

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
)

func newRollbackCmd(g *Globals) *cobra.Command {
	var env, to, project string
	var wait, yes bool
	cmd := &cobra.Command{
		Use:   "rollback SERVICE --env ENV [--to RELEASE]",
		Short: "Release an earlier version again (the previous successful release by default)",
		Long: `Rollback makes a new release from an earlier one of the service (or, inside a
blue/green scale_down_delay, switches the traffic straight back). A rollback
in a protected environment needs a confirmation: runway asks, or takes --yes.`,
		Example: "  runway rollback hello --env staging\n  runway rollback hello --env production --to 01JD3Q8Y7Z5W2X4V6T8R0P2N4M --yes --wait",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := serviceScope(cmd.Context(), g, env, project)
			if err != nil {
				return err
			}
			req := apiwire.RollbackRequest{Project: project, Environment: env, Service: args[0], To: to, RequestID: newRequestID(), RequestedAt: time.Now().UTC(), Confirmed: yes}
			rel, err := c.Rollback(cmd.Context(), req)
			if client.IsKind(err, apiwire.KindConfirmationRequired) && !yes {
				// A protected environment: ask, and send a new request.
				ok, cerr := confirm(g, fmt.Sprintf("%s is protected. Roll back %s in %s?", env, args[0], env))
				if cerr != nil {
					return cerr
				}
				if !ok {
					return errors.New("rollback cancelled")
				}
				req.RequestID, req.RequestedAt, req.Confirmed = newRequestID(), time.Now().UTC(), true
				rel, err = c.Rollback(cmd.Context(), req)
			}
			if err != nil {
				return serverDiagnostics(g, err, nil)
			}
			if rel.SwitchBack {
				return followSwitchBack(cmd.Context(), g, c, rel, wait)
			}
			if wait {
				return followRelease(cmd.Context(), g, c, rel.ID)
			}
			if g.JSON() {
				return writeJSON(g, rel)
			}
			fmt.Fprintf(g.Stdout, "rollback release %s submitted (%s %s in %s)\n", rel.ID, rel.Service, rel.Version, env)
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().StringVar(&to, "to", "", "release id to return to (default: the previous successful release)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "confirm a rollback in a protected environment without asking")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the release and exit 0 only on success")
	projectFlag(cmd, &project)
	return cmd
}
