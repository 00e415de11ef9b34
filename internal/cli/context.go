package cli

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/client"
)

// DefaultServer is the server a CLI without a context talks to.
const DefaultServer = "http://127.0.0.1:7040"

// sameServer compares server URLs as the CLI sends to them.
func sameServer(a, b string) bool {
	return strings.TrimRight(a, "/") == strings.TrimRight(b, "/")
}

// resolved is the server to call and the token to send it.
type resolved struct {
	Server string
	Token  string
	CAFile string
	// Context names the context the token came from ("" for --token, RUNWAY_TOKEN or none).
	Context string
}

// resolve picks the server and token of a command. --server/RUNWAY_SERVER
// and --token/RUNWAY_TOKEN win; otherwise the current context gives both. A
// context's token is only ever sent to that context's server: with another
// --server, the context whose server it is (if any) gives the token.
func (g *Globals) resolve() (*resolved, error) {
	cfg, path, err := LoadCLIConfig()
	if err != nil {
		return nil, err
	}
	out := &resolved{Server: g.Server, Token: g.Token}
	var ctx *Context
	name := g.Context
	if name != "" {
		if ctx = cfg.Contexts[name]; ctx == nil {
			return nil, UsageErrorf("--context %q: no such context in %s (runway context list)", name, path)
		}
	} else if cfg.Current != "" {
		name, ctx = cfg.Current, cfg.Contexts[cfg.Current]
	}
	if out.Server == "" {
		if ctx != nil {
			out.Server = ctx.Server
		} else {
			out.Server = DefaultServer
		}
	}
	if ctx == nil || !sameServer(ctx.Server, out.Server) {
		// The current context is another server's: find this server's own.
		name, ctx = "", nil
		for _, n := range sortedNames(cfg) {
			if sameServer(cfg.Contexts[n].Server, out.Server) {
				name, ctx = n, cfg.Contexts[n]
				break
			}
		}
	}
	if ctx != nil {
		out.CAFile = ctx.CAFile
		if out.Token == "" {
			tok, err := ctx.token()
			if err != nil {
				return nil, fmt.Errorf("context %s: %w", name, err)
			}
			out.Token, out.Context = tok, name
		}
	}
	return out, nil
}

func sortedNames(cfg *CLIConfig) []string {
	names := make([]string, 0, len(cfg.Contexts))
	for n := range cfg.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// token reads the context's token.
func (c *Context) token() (string, error) {
	if c.Token != "" {
		return c.Token, nil
	}
	if c.TokenFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read its token file: %w (run `runway login` again, or `runway context remove`)", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (g *Globals) client() (*client.Client, error) {
	r, err := g.resolve()
	if err != nil {
		return nil, err
	}
	return newClient(r)
}

func newClient(r *resolved) (*client.Client, error) {
	if r.CAFile == "" {
		return client.New(r.Server, r.Token)
	}
	pem, err := os.ReadFile(r.CAFile)
	if err != nil {
		return nil, fmt.Errorf("read the CA file of the context: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", r.CAFile)
	}
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	return client.NewWithHTTP(r.Server, r.Token, hc)
}

// upContextName is the name of the context `runway up` records for a
// server on listen.
func upContextName(listen string) string {
	if "http://"+listen == DefaultServer {
		return "local"
	}
	if _, port, ok := strings.Cut(listen, ":"); ok {
		return "local-" + port
	}
	return "local"
}

// RecordUpContext records the context of a `runway up` in the user's config
// and makes it current, so every command works from any directory: its
// server URL, admin token file and agent. It says where, never the token.
func RecordUpContext(g *Globals, serverListen, tokenFile, agentURL, agentTokenFile string) {
	abs := func(p string) string {
		if a, err := filepath.Abs(p); err == nil {
			return a
		}
		return p
	}
	cfg, path, err := LoadCLIConfig()
	if err != nil {
		fmt.Fprintf(g.Stderr, "warning: context not recorded: %v\n", err)
		return
	}
	name := upContextName(serverListen)
	cfg.Contexts[name] = &Context{Server: "http://" + serverListen, TokenFile: abs(tokenFile), AgentURL: agentURL, AgentTokenFile: abs(agentTokenFile)}
	cfg.Current = name
	if err := cfg.Save(path); err != nil {
		fmt.Fprintf(g.Stderr, "warning: context not recorded: %v\n", err)
		return
	}
	fmt.Fprintf(g.Stdout, "Recorded context %s (current) in %s: runway works from any directory.\n", name, path)
}

func newContextCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "List, choose and remove the servers this CLI talks to",
		Long: `A context is a server URL and the token to send it, kept in
$XDG_CONFIG_HOME/runway/config.toml (0600; ~/.config by default). runway up
and runway login add them; the current one is used unless --server,
--context or RUNWAY_SERVER say otherwise. A context's token is only ever sent
to its own server.`,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the contexts; * marks the current one",
		Example: "  runway context list\n  runway context list --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			type row struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Server  string `json:"server"`
				Token   string `json:"token"`
			}
			rows := []row{}
			for _, n := range sortedNames(cfg) {
				c := cfg.Contexts[n]
				tok := "(none)"
				switch {
				case c.TokenFile != "":
					tok = "file " + c.TokenFile
				case c.Token != "":
					tok = "in config.toml"
				}
				rows = append(rows, row{n, n == cfg.Current, c.Server, tok})
			}
			if g.JSON() {
				return writeJSON(g, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.Stdout, "no contexts; `runway up` or `runway login --server URL` adds one")
				return nil
			}
			fmt.Fprintf(g.Stdout, "  %-16s  %-32s  %s\n", "NAME", "SERVER", "TOKEN")
			for _, r := range rows {
				mark := " "
				if r.Current {
					mark = "*"
				}
				fmt.Fprintf(g.Stdout, "%s %-16s  %-32s  %s\n", mark, r.Name, r.Server, r.Token)
			}
			return nil
		},
	}
	use := &cobra.Command{
		Use:     "use NAME",
		Short:   "Make a context the current one",
		Example: "  runway context use production",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			if cfg.Contexts[args[0]] == nil {
				return fmt.Errorf("no context %q; runway context list shows them", args[0])
			}
			cfg.Current = args[0]
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "current context: %s (%s)\n", args[0], cfg.Contexts[args[0]].Server)
			return nil
		},
	}
	remove := &cobra.Command{
		Use:     "remove NAME",
		Short:   "Forget a context (and its token, if config.toml held it)",
		Example: "  runway context remove old-staging",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			if cfg.Contexts[args[0]] == nil {
				return fmt.Errorf("no context %q; runway context list shows them", args[0])
			}
			delete(cfg.Contexts, args[0])
			if cfg.Current == args[0] {
				cfg.Current = ""
			}
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "removed context %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, use, remove)
	return cmd
}

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
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("read --token-file: %w", err)
				}
				tok = strings.TrimSpace(string(b))
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
