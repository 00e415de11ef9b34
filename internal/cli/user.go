package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
)

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
			return render(g, users, usersTable)
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
			return render(g, u, userTable)
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
