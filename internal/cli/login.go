package cli

import (
	"bufio"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/fsutil"
)

func newLoginCmd(g *Globals) *cobra.Command {
	var name, tokenFile, caFile string
	cmd := &cobra.Command{
		Use:   "login --server URL [--token-file FILE]",
		Short: "Add a context: a server and the token to use with it",
		Long: `Login checks a token against a server (GET /v1/whoami) and records them as a
context in $XDG_CONFIG_HOME/runway/config.toml, made current. The token comes
from --token-file (the file's path is recorded, not the token) or from stdin
(then config.toml, mode 0600, holds it). It is only ever sent to this server.`,
		Example: `  runway login --server https://runway.example.com --token-file ~/.runway-ci.token
  echo "$RUNWAY_CI_TOKEN" | runway login --server http://10.0.0.5:7040 --name ci`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if g.Server == "" {
				return UsageErrorf("--server is required: the URL of the Runway server, such as https://runway.example.com")
			}
			u, err := url.Parse(g.Server)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return UsageErrorf("--server %q: want http(s)://host[:port]", g.Server)
			}
			var tok string
			if tokenFile != "" {
				abs, err := filepath.Abs(tokenFile)
				if err != nil {
					return err
				}
				tokenFile = abs
				t, err := fsutil.ReadToken(tokenFile)
				if err != nil {
					return fmt.Errorf("read --token-file: %w", err)
				}
				tok = t
			} else {
				if f, ok := g.Stdin.(*os.File); ok {
					if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
						fmt.Fprint(g.Stderr, "token: ")
					}
				}
				line, err := bufio.NewReader(g.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return UsageErrorf("no token on stdin: pipe it in, or pass --token-file FILE")
				}
				tok = strings.TrimSpace(line)
			}
			if _, err := auth.ParseToken(tok); err != nil {
				from := "stdin"
				if tokenFile != "" {
					from = tokenFile
				}
				return fmt.Errorf("the token read from %s: %v; copy it again from the output of `runway user create` or `runway token create`", from, err)
			}
			if caFile != "" {
				if caFile, err = filepath.Abs(caFile); err != nil {
					return err
				}
			}
			c, err := newClient(&resolved{Server: g.Server, Token: tok, CAFile: caFile})
			if err != nil {
				return err
			}
			who, err := c.Whoami(cmd.Context())
			if err != nil {
				return fmt.Errorf("the server refused the token: %w", err)
			}
			cfg, path, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			if name == "" {
				name = u.Hostname()
				if u.Port() != "" {
					name += "-" + u.Port()
				}
			}
			if !contextNameRe.MatchString(name) {
				return UsageErrorf("--name %q: use letters, digits, dots, dashes or underscores", name)
			}
			ctx := &Context{Server: strings.TrimRight(g.Server, "/"), CAFile: caFile}
			if tokenFile != "" {
				ctx.TokenFile = tokenFile
			} else {
				ctx.Token = tok
			}
			cfg.Contexts[name], cfg.Current = ctx, name
			if err := cfg.Save(path); err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, map[string]any{"context": name, "server": ctx.Server, "user": who.User, "roles": who.Roles})
			}
			fmt.Fprintf(g.Stdout, "logged in to %s as %s (%s); context %s is current (%s)\n", ctx.Server, who.User, strings.Join(who.Roles, ", "), name, path)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "name of the context (default: the server's host and port)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "file holding the token (default: read it from stdin)")
	cmd.Flags().StringVar(&caFile, "ca-file", "", "CA certificate that signed an https server's certificate (such as a local CA's ca.crt)")
	return cmd
}
