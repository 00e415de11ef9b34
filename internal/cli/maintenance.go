package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newMaintenanceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "maintenance",
		Short: "Answer every request of a service with a maintenance page (503), or stop",
		Long: `maintenance on makes the proxy answer every request of the service with 503
and a message instead of routing it, until maintenance off; the page stays
through releases and restarts. Deployers of the environment may switch it.`,
	}
	for _, on := range []bool{true, false} {
		var env, project, message string
		use, short := "off SERVICE --env ENV", "Route the service's requests again"
		example := "  runway maintenance off hello --env production"
		if on {
			use, short = "on SERVICE --env ENV [--message TEXT]", "Answer every request of the service with a maintenance page (503)"
			example = "  runway maintenance on hello --env production --message 'Back at 10:00 UTC'"
		}
		sub := &cobra.Command{
			Use: use, Short: short, Example: example, Args: exactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				c, project, err := serviceScope(cmd.Context(), g, env, project)
				if err != nil {
					return err
				}
				m, err := c.Maintenance(cmd.Context(), project, env, args[0], apiwire.MaintenanceRequest{On: on, Message: message})
				if err != nil {
					return err
				}
				if g.JSON() {
					return writeJSON(g, m)
				}
				if m.On {
					fmt.Fprintf(g.Stdout, "maintenance on for %s in %s: every request is answered 503 %q\n", args[0], env, m.Message)
				} else {
					fmt.Fprintf(g.Stdout, "maintenance off for %s in %s: requests are routed again\n", args[0], env)
				}
				return nil
			},
		}
		sub.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
		if on {
			sub.Flags().StringVar(&message, "message", "", "the page's text (default: the proxy's)")
		}
		projectFlag(sub, &project)
		cmd.AddCommand(sub)
	}
	return cmd
}
