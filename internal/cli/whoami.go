package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/api"
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
			if g.JSON() {
				return writeJSON(g, struct {
					*api.Whoami
					Server  string `json:"server"`
					Context string `json:"context,omitempty"`
				}{w, r.Server, r.Context})
			}
			from := ""
			if r.Context != "" {
				from = " (context " + r.Context + ")"
			}
			deploy := "nowhere"
			if len(w.DeployTo) > 0 {
				deploy = strings.Join(w.DeployTo, "; ")
			}
			expires := "never"
			if w.TokenExpiresAt != nil {
				expires = w.TokenExpiresAt.Local().Format(time.RFC3339)
			}
			fmt.Fprintf(g.Stdout, "user:      %s\nroles:     %s\nserver:    %s%s\ntoken:     %s (expires %s)\ndeploy to: %s\n",
				w.User, strings.Join(w.Roles, ", "), r.Server, from, w.TokenID, expires, deploy)
			return nil
		},
	}
}
