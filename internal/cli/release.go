package cli

import (
	"github.com/spf13/cobra"
)

func newReleaseCmd(g *Globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{Use: "release", Short: "Inspect one release"}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a release: its states with timings and the traffic it served",
		Long: `Show prints a release's record: who released what and when, its states with
timings and the requests served and failed while it ran. With --wait it
follows a release still running, as "runway deploy --wait" does, and exits 0
only if it succeeds.`,
		Example: "  runway release show 01JD3Q8Y7Z5W2X4V6T8R0P2N4M\n  runway release show 01JD3Q8Y7Z5W2X4V6T8R0P2N4M --wait",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if wait {
				return followRelease(cmd.Context(), g, c, args[0])
			}
			rel, err := c.Release(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return render(g, rel, releaseTable)
		},
	}
	show.Flags().BoolVarP(&wait, "wait", "w", false, "follow the release until it ends; exit 0 only on success")
	cmd.AddCommand(show)
	return cmd
}
