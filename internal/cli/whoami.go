package cli

import (
	"github.com/spf13/cobra"
)

func newWhoamiCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:     "whoami",
		Short:   "Show who the server sees: user, roles, token and where you may deploy",
		Example: "  runway whoami\n  runway whoami --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.resolve()
			if err != nil {
				return err
			}
			c, err := newClient(r)
			if err != nil {
				return err
			}
			w, err := c.Whoami(cmd.Context())
			if err != nil {
				return err
			}
			return render(g, whoamiView{w, r.Server, r.Context}, whoamiTable)
		},
	}
}
