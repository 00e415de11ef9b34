package cli

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/fsutil"
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
	tok, err := fsutil.ReadToken(c.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read its token file: %w (run `runway login` again, or `runway context remove`)", err)
	}
	return tok, nil
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
