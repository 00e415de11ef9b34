package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newTokenCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke API tokens"}
	var expires, name, user string
	create := &cobra.Command{
		Use:   "create [--expires 720h] [--name ci]",
		Short: "Create a token for yourself (or, as global_admin, for --user); shown this once",
		Example: `  runway token create --name laptop --expires 720h
  runway token create --user ci --name github-actions --expires 2160h`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkExpires(expires); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out, err := c.CreateToken(cmd.Context(), apiwire.CreateTokenRequest{User: user, Name: name, ExpiresIn: expires})
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, out)
			}
			fmt.Fprintf(g.Stdout, "token %s of %s (expires %s; shown once, store it now):\n%s\n", out.TokenInfo.ID, out.TokenInfo.User, fmtTime(out.TokenInfo.ExpiresAt), out.Token)
			return nil
		},
	}
	create.Flags().StringVar(&expires, "expires", "", "lifetime, such as 720h (default: never)")
	create.Flags().StringVar(&name, "name", "", "a label for the token, such as ci (default: the user's name)")
	create.Flags().StringVar(&user, "user", "", "whose token (global_admin only; default: yours)")
	var all bool
	var of string
	list := &cobra.Command{
		Use:     "list",
		Short:   "List your tokens (ids, never the tokens)",
		Example: "  runway token list\n  runway token list --user ci\n  runway token list --all --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if all {
				of = "*"
			}
			toks, err := c.Tokens(cmd.Context(), of)
			if err != nil {
				return err
			}
			return render(g, toks, tokensTable)
		},
	}
	list.Flags().StringVar(&of, "user", "", "another user's tokens (read_only or global_admin)")
	list.Flags().BoolVar(&all, "all", false, "every user's tokens (read_only or global_admin)")
	revoke := &cobra.Command{
		Use:     "revoke ID",
		Short:   "Revoke a token; it stops working on the next request",
		Example: "  runway token revoke tok_01jd3q8y7z5w2x4v6t8r0p2n4a",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			t, err := c.RevokeToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, t)
			}
			fmt.Fprintf(g.Stdout, "revoked token %s of %s\n", t.ID, t.User)
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
