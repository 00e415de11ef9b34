package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/secrets"
)

// secretFlags are the flags every secret command shares.
type secretFlags struct{ env, project string }

func (f *secretFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&f.env, "env", "e", "", "environment (required)")
	projectFlag(cmd, &f.project)
}

// serviceAndKey reads "[SERVICE] KEY": one argument is an environment-wide
// secret's key, two are a service and its key.
func serviceAndKey(args []string) (service, key string, err error) {
	switch len(args) {
	case 1:
		key = args[0]
	case 2:
		service, key = args[0], args[1]
	default:
		return "", "", UsageErrorf("give [SERVICE] KEY: the key of an environment-wide secret, or a service and its key")
	}
	if !secrets.KeyRe.MatchString(key) {
		return "", "", UsageErrorf("%q is not a secret key: use upper-case letters, digits and underscores, starting with a letter (such as DATABASE_URL)", key)
	}
	return service, key, nil
}

// secretOf is the common start of the commands about one secret: "[SERVICE]
// KEY", then the client and the project (serviceScope).
func (f *secretFlags) secretOf(cmd *cobra.Command, g *Globals, args []string) (c *client.Client, project, service, key string, err error) {
	if service, key, err = serviceAndKey(args); err != nil {
		return nil, "", "", "", err
	}
	c, project, err = serviceScope(cmd.Context(), g, f.env, f.project)
	return c, project, service, key, err
}

// scopeName is how a secret's place is shown: the service, or "environment".
func scopeName(service string) string {
	if service == "" {
		return "environment-wide"
	}
	return "service " + service
}

func newSecretCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Put, list, read, roll back and delete secrets (values are never shown but by secret get)",
		Long: `Secrets are versioned and encrypted at rest on the server. A release pins the
current version of every secret its manifest names (secrets = ["KEY"] or
secret_env = { VAR = "KEY" }): the service's own secret first, else the
environment-wide one (put without SERVICE). A new version reaches instances
with the next deploy; rollback brings back the versions the earlier release pinned.`,
	}
	cmd.AddCommand(newSecretPutCmd(g), newSecretListCmd(g), newSecretGetCmd(g), newSecretHistoryCmd(g),
		newSecretRollbackCmd(g), newSecretDeleteCmd(g), newSecretRotateCmd(g))
	return cmd
}

// secretValues gathers a put's values: KEY=VALUE arguments, --from-file
// KEY=PATH, --stdin KEY (the whole of stdin, one trailing newline removed).
func secretValues(g *Globals, pairs, files []string, stdinKey string) (map[string]string, error) {
	out := map[string]string{}
	add := func(key, value, from string) error {
		if !secrets.KeyRe.MatchString(key) {
			return UsageErrorf("%s: %q is not a secret key: use upper-case letters, digits and underscores, starting with a letter (such as DATABASE_URL)", from, key)
		}
		if _, dup := out[key]; dup {
			return UsageErrorf("%s: %s is given twice", from, key)
		}
		if err := secrets.CheckValue(secrets.Ref{Key: key}, []byte(value)); err != nil {
			return UsageErrorf("%s: %v", from, err)
		}
		out[key] = value
		return nil
	}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, UsageErrorf("argument %q: want KEY=VALUE (or --from-file KEY=PATH, --stdin KEY)", trimArg(p))
		}
		if err := add(k, v, "argument "+k); err != nil {
			return nil, err
		}
	}
	for _, f := range files {
		k, path, ok := strings.Cut(f, "=")
		if !ok || path == "" {
			return nil, UsageErrorf("--from-file %q: want KEY=PATH", trimArg(f))
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--from-file %s: %w", k, err)
		}
		if err := add(k, string(b), "--from-file "+k); err != nil {
			return nil, err
		}
	}
	if stdinKey != "" {
		if f, ok := g.Stdin.(*os.File); ok {
			if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
				fmt.Fprintf(g.Stderr, "value of %s (it is echoed; end with Ctrl-D, or pipe it in):\n", stdinKey)
			}
		}
		b, err := io.ReadAll(io.LimitReader(g.Stdin, secrets.MaxValue+2))
		if err != nil {
			return nil, fmt.Errorf("--stdin %s: read stdin: %w", stdinKey, err)
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		if err := add(stdinKey, string(b), "--stdin "+stdinKey); err != nil {
			return nil, err
		}
	}
	if len(out) == 0 {
		return nil, UsageErrorf("give at least one value: KEY=VALUE, --from-file KEY=PATH or --stdin KEY")
	}
	return out, nil
}

// trimArg shows the start of an argument that may hold a value: its key only.
func trimArg(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}

func newSecretPutCmd(g *Globals) *cobra.Command {
	var f secretFlags
	var overwrite bool
	var files []string
	var stdinKey string
	cmd := &cobra.Command{
		Use:   "put [SERVICE] --env ENV KEY=VALUE... [--from-file KEY=PATH] [--stdin KEY] [--overwrite]",
		Short: "Store a new version of secrets (all or none); without SERVICE, environment-wide",
		Long: `Put stores a new version of each value, all or none. A key that already has a
value is refused unless --overwrite. Without SERVICE the secrets are
environment-wide: every service of the environment that names them receives
them (a service's own secret of the same key wins). Values given with
--stdin or --from-file stay out of the shell's history.`,
		Example: `  runway secret put hello --env staging DATABASE_URL=postgres://db/hello
  printf '%s' "$PASSWORD" | runway secret put hello --env staging --stdin DB_PASSWORD --overwrite
  runway secret put --env staging --from-file TLS_KEY=./key.pem`,
		RunE: func(cmd *cobra.Command, args []string) error {
			service := ""
			if len(args) > 0 && !strings.Contains(args[0], "=") {
				service, args = args[0], args[1:]
			}
			values, err := secretValues(g, args, files, stdinKey)
			if err != nil {
				return err
			}
			c, project, err := serviceScope(cmd.Context(), g, f.env, f.project)
			if err != nil {
				return err
			}
			out, err := c.PutSecrets(cmd.Context(), project, f.env, apiwire.SecretPutRequest{Service: service, Values: values, Overwrite: overwrite})
			for k := range values {
				values[k] = ""
			}
			if err != nil {
				return err
			}
			return render(g, out, func(w io.Writer, vs []apiwire.SecretVersion) error {
				for _, v := range vs {
					fmt.Fprintf(w, "put %s v%d (%s of %s)\n", v.Key, v.Version, scopeName(v.Service), f.env)
				}
				fmt.Fprintln(w, "deploy to give it to the instances: runway deploy --env "+f.env)
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&overwrite, "overwrite", false, "make a new version of keys that already have a value")
	cmd.Flags().StringArrayVar(&files, "from-file", nil, "KEY=PATH: the value is the file's content (repeatable)")
	cmd.Flags().StringVar(&stdinKey, "stdin", "", "KEY: the value is read from stdin (one trailing newline removed)")
	return cmd
}

func newSecretListCmd(g *Globals) *cobra.Command {
	var f secretFlags
	cmd := &cobra.Command{
		Use:     "list [SERVICE] --env ENV",
		Short:   "List secrets: key, where, current version, created, changed, last accessed (never values)",
		Example: "  runway secret list hello --env staging\n  runway secret list --env staging --output json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := serviceScope(cmd.Context(), g, f.env, f.project)
			if err != nil {
				return err
			}
			service := ""
			if len(args) == 1 {
				service = args[0]
			}
			list, err := c.Secrets(cmd.Context(), project, f.env, service)
			if err != nil {
				return err
			}
			return render(g, list, secretsTable)
		},
	}
	f.add(cmd)
	return cmd
}

func newSecretGetCmd(g *Globals) *cobra.Command {
	var f secretFlags
	var version int
	cmd := &cobra.Command{
		Use:   "get [SERVICE] KEY --env ENV [--version N]",
		Short: "Print a secret's value (needs <environment>_admin or global_admin; the read is audited)",
		Example: `  runway secret get hello DATABASE_URL --env staging
  runway secret get SHARED_KEY --env staging --version 2`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if version < 0 {
				return UsageErrorf("--version must be 1 or more")
			}
			c, project, service, key, err := f.secretOf(cmd, g, args)
			if err != nil {
				return err
			}
			v, err := c.SecretValue(cmd.Context(), project, f.env, service, key, version)
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, v)
			}
			fmt.Fprintln(g.Stdout, v.Value)
			return nil
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&version, "version", 0, "version to read (default: the current one)")
	return cmd
}

func newSecretHistoryCmd(g *Globals) *cobra.Command {
	var f secretFlags
	cmd := &cobra.Command{
		Use:     "history [SERVICE] KEY --env ENV",
		Short:   "List a secret's versions: who made each and when (never values)",
		Example: "  runway secret history hello DATABASE_URL --env staging",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, service, key, err := f.secretOf(cmd, g, args)
			if err != nil {
				return err
			}
			h, err := c.SecretHistory(cmd.Context(), project, f.env, service, key)
			if err != nil {
				return err
			}
			return render(g, h, secretHistoryTable)
		},
	}
	f.add(cmd)
	return cmd
}

func newSecretRollbackCmd(g *Globals) *cobra.Command {
	var f secretFlags
	var to int
	cmd := &cobra.Command{
		Use:     "rollback [SERVICE] KEY --env ENV --to N",
		Short:   "Make a new version of a secret with the value of version N",
		Example: "  runway secret rollback hello DATABASE_URL --env staging --to 2",
		Args:    cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to < 1 {
				return UsageErrorf("--to is required: the version to go back to (see runway secret history)")
			}
			c, project, service, key, err := f.secretOf(cmd, g, args)
			if err != nil {
				return err
			}
			v, err := c.RollbackSecret(cmd.Context(), project, f.env, key, apiwire.SecretRollbackRequest{Service: service, To: to})
			if err != nil {
				return err
			}
			return render(g, v, func(w io.Writer, v *apiwire.SecretVersion) error {
				fmt.Fprintf(w, "%s v%d has the value of v%d (%s of %s); deploy to give it to the instances\n", v.Key, v.Version, v.RollbackOf, scopeName(v.Service), f.env)
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&to, "to", 0, "version whose value the new version takes (required)")
	return cmd
}

func newSecretDeleteCmd(g *Globals) *cobra.Command {
	var f secretFlags
	var force, yes bool
	cmd := &cobra.Command{
		Use:   "delete [SERVICE] KEY --env ENV [--force] [--yes]",
		Short: "Delete a secret and all its versions (refused while a running release pins it, unless --force)",
		Example: `  runway secret delete hello OLD_API_KEY --env staging --yes
  runway secret delete SHARED_KEY --env staging --force --yes`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, service, key, err := f.secretOf(cmd, g, args)
			if err != nil {
				return err
			}
			if !yes {
				ok, err := confirm(g, fmt.Sprintf("Delete secret %s (%s of %s) and all its versions?", key, scopeName(service), f.env))
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("delete cancelled")
				}
			}
			d, err := c.DeleteSecret(cmd.Context(), project, f.env, key, apiwire.SecretDeleteRequest{Service: service, Force: force})
			if err != nil {
				return err
			}
			return render(g, d, func(w io.Writer, d *apiwire.SecretDeleted) error {
				fmt.Fprintf(w, "deleted secret %s (%s of %s)\n", d.Key, scopeName(d.Service), f.env)
				if len(d.PinnedBy) > 0 {
					fmt.Fprintf(w, "warning: still pinned by %s: their instances cannot restart until a release without it is deployed\n", strings.Join(d.PinnedBy, ", "))
				}
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().BoolVar(&force, "force", false, "delete even while running releases pin it")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

func newSecretRotateCmd(g *Globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "rotate-master-key [--yes]",
		Short: "Re-wrap every secret's data key under a new master key, in one transaction (global_admin)",
		Long: `The server makes a new master key, re-wraps the data key of every stored
version under it in one transaction, and replaces DATA_DIR/master.key. Values
and versions do not change. A master key given in RUNWAY_MASTER_KEY is not
rotated by the server.`,
		Example: "  runway secret rotate-master-key --yes",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if !yes {
				ok, err := confirm(g, "Rotate the master key of every secret on this server?")
				if err != nil {
					return err
				}
				if !ok {
					return fmt.Errorf("rotation cancelled")
				}
			}
			r, err := c.RotateMasterKey(cmd.Context())
			if err != nil {
				return err
			}
			return render(g, r, func(w io.Writer, r *apiwire.MasterKeyRotated) error {
				fmt.Fprintf(w, "master key %s replaced by %s: %s version(s) re-wrapped\n", r.OldKeyID, r.NewKeyID, strconv.Itoa(r.Versions))
				return nil
			})
		},
	}
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}
