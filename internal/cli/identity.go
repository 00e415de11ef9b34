package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
)

func init() {
	register(newUserCmd)
	register(newTokenCmd)
	register(newWhoamiCmd)
	register(newAuditCmd)
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// checkExpires validates --expires before anything is sent.
func checkExpires(s string) error {
	if _, err := api.ParseExpiresIn("--expires", s); err != nil {
		return UsageErrorf("--expires %q: want a duration such as 720h (at most %s)", s, api.MaxTokenLifetime)
	}
	return nil
}

// roleFlags turns --role R... and --project P into role strings.
func roleFlags(roles []string, project string) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		if project != "" && !strings.Contains(r, "@") {
			r += "@" + project
		}
		out = append(out, r)
	}
	return out
}

func newUserCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "user",
		Short: "Manage the users of the server and their roles (global_admin)",
		Long: `Users call the server with tokens; what they may do is their roles:
  global_admin              everything
  read_only                 everything readable, never secret values
  <environment>_admin       everything inside that environment
  <environment>_deployer    deploy, rollback, halt, status and logs in that environment
Each role but global_admin can be scoped to one project with --project NAME
(written role@project, such as staging_deployer@hello).`,
	}
	var roles []string
	var project, expires string
	create := &cobra.Command{
		Use:   "create NAME --role ROLE...",
		Short: "Create a user and print its first token (shown this once)",
		Example: `  runway user create ci --role staging_deployer --project hello --expires 720h
  runway user create ana --role production_admin --role read_only`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(roles) == 0 {
				return UsageErrorf("--role is required, such as --role staging_deployer")
			}
			if err := checkExpires(expires); err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			out, err := c.CreateUser(cmd.Context(), apiwire.CreateUserRequest{Name: args[0], Roles: roleFlags(roles, project), ExpiresIn: expires})
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, out)
			}
			fmt.Fprintf(g.Stdout, "created user %s with role %s\ntoken %s (shown once; store it now):\n%s\n", out.User.Name,
				strings.Join(out.User.Roles, ", "), out.TokenInfo.ID, out.Token)
			return nil
		},
	}
	create.Flags().StringArrayVar(&roles, "role", nil, "role to give (repeatable)")
	create.Flags().StringVar(&project, "project", "", "scope the roles to this project")
	create.Flags().StringVar(&expires, "expires", "", "the token's lifetime, such as 720h (default: never)")

	list := &cobra.Command{
		Use:     "list",
		Short:   "List the users and their roles",
		Example: "  runway user list\n  runway user list --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			users, err := c.Users(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, users)
			}
			fmt.Fprintf(g.Stdout, "%-20s  %-8s  %s\n", "NAME", "STATE", "ROLES")
			for _, u := range users {
				fmt.Fprintf(g.Stdout, "%-20s  %-8s  %s\n", u.Name, map[bool]string{true: "disabled", false: "enabled"}[u.Disabled], strings.Join(u.Roles, ", "))
			}
			return nil
		},
	}
	show := &cobra.Command{
		Use:     "show NAME",
		Short:   "Show a user: roles and tokens (ids, never the tokens)",
		Example: "  runway user show ci",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			u, err := c.User(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, u)
			}
			fmt.Fprintf(g.Stdout, "user %s (%s), created by %s at %s\nroles: %s\n", u.Name, map[bool]string{true: "disabled", false: "enabled"}[u.Disabled],
				u.CreatedBy, u.CreatedAt.Local().Format(time.RFC3339), strings.Join(u.Roles, ", "))
			printTokens(g, u.Tokens)
			return nil
		},
	}
	var add, remove []string
	update := &cobra.Command{
		Use:     "update NAME [--add-role ROLE]... [--remove-role ROLE]...",
		Short:   "Give or take roles",
		Example: "  runway user update ci --add-role production_deployer --remove-role staging_deployer",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(add) == 0 && len(remove) == 0 {
				return UsageErrorf("nothing to change: give --add-role or --remove-role")
			}
			return updateUser(cmd, g, args[0], apiwire.UpdateUserRequest{AddRoles: roleFlags(add, project), RemoveRoles: roleFlags(remove, project)})
		},
	}
	update.Flags().StringArrayVar(&add, "add-role", nil, "role to give (repeatable)")
	update.Flags().StringArrayVar(&remove, "remove-role", nil, "role to take away (repeatable)")
	update.Flags().StringVar(&project, "project", "", "the roles are scoped to this project")
	var enable bool
	disable := &cobra.Command{
		Use:     "disable NAME",
		Short:   "Disable a user: its tokens stop working on the next request",
		Example: "  runway user disable ci\n  runway user disable ci --enable",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d := !enable
			return updateUser(cmd, g, args[0], apiwire.UpdateUserRequest{Disabled: &d})
		},
	}
	disable.Flags().BoolVar(&enable, "enable", false, "enable the user again instead")
	cmd.AddCommand(create, list, show, update, disable)
	return cmd
}

func updateUser(cmd *cobra.Command, g *Globals, name string, req apiwire.UpdateUserRequest) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	u, err := c.UpdateUser(cmd.Context(), name, req)
	if err != nil {
		return err
	}
	if g.JSON() {
		return writeJSON(g, u)
	}
	fmt.Fprintf(g.Stdout, "user %s (%s): %s\n", u.Name, map[bool]string{true: "disabled", false: "enabled"}[u.Disabled], strings.Join(u.Roles, ", "))
	return nil
}

func printTokens(g *Globals, list []*apiwire.Token) {
	fmt.Fprintf(g.Stdout, "%-32s  %-10s  %-12s  %-16s  %-16s  %s\n", "TOKEN ID", "USER", "NAME", "EXPIRES", "LAST USED", "STATE")
	for _, t := range list {
		state := "active"
		switch {
		case t.RevokedAt != nil:
			state = "revoked " + fmtTime(t.RevokedAt)
		case t.ExpiresAt != nil && !t.ExpiresAt.After(time.Now()):
			state = "expired"
		}
		fmt.Fprintf(g.Stdout, "%-32s  %-10s  %-12s  %-16s  %-16s  %s\n", t.ID, t.User, t.Name, fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt), state)
	}
}

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
			if g.JSON() {
				return writeJSON(g, toks)
			}
			printTokens(g, toks)
			return nil
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
					*apiwire.Whoami
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

func newAuditCmd(g *Globals) *cobra.Command {
	var since time.Duration
	var actor, env string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--actor NAME] [--env ENV]",
		Short: "List the audit log: who changed what, when, from where",
		Long: `Every change made through the API (allowed or refused) is an entry of the
server's audit log: time, actor, token id, source address, action, target,
the request's digest and the outcome. Entries are hash-chained; runway audit
verify recomputes the chain.`,
		Example: "  runway audit --since 24h\n  runway audit --actor ci --env production --output json\n  runway audit verify",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since < 0 {
				return UsageErrorf("--since %s: want a positive duration such as 24h", since)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			f := apiwire.AuditFilter{Actor: actor, Environment: env, Limit: limit}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			list, err := c.Audit(cmd.Context(), f)
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, list)
			}
			fmt.Fprintf(g.Stdout, "%-5s  %-19s  %-10s  %-15s  %-16s  %-28s  %s\n", "SEQ", "TIME", "ACTOR", "SOURCE", "ACTION", "TARGET", "OUTCOME")
			for _, e := range list {
				fmt.Fprintf(g.Stdout, "%-5d  %-19s  %-10s  %-15s  %-16s  %-28s  %s\n", e.Seq, e.At.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Source, e.Action, e.Target, e.Outcome)
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only entries of the last DURATION, such as 24h")
	cmd.Flags().StringVar(&actor, "actor", "", "only entries of this user")
	cmd.Flags().StringVarP(&env, "env", "e", "", "only entries about this environment")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many entries (the newest)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 naming the first bad entry",
		Long: `Verify has the server recompute every entry's hash from the first one and
compare the newest with the chain's head, which the server also keeps in a
file beside its database: an edited, deleted or reordered entry, a dropped
trigger or a truncated table are all reported, naming the first bad entry.`,
		Example: "  runway audit verify\n  runway audit verify --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rep, err := c.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON() {
				if err := writeJSON(g, rep); err != nil {
					return err
				}
			} else if rep.OK {
				fmt.Fprintf(g.Stdout, "audit log intact: %d entries, chain head %d matches\n", rep.Entries, rep.HeadSeq)
			}
			if !rep.OK {
				if !g.JSON() {
					fmt.Fprintf(g.Stderr, "audit log TAMPERED: %s\n", rep.Problem)
				}
				return silentError{ExitFailure}
			}
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
