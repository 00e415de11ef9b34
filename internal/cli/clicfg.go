package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/runwayhq/runway/internal/fsutil"
)

// CLIConfig is the user's config.toml: the contexts (servers the user
// talks to) and which one is current. It is a small TOML subset, read and
// written here:
//
//	current = "local"
//
//	[contexts.local]
//	server = "http://127.0.0.1:7040"
//	token_file = "/home/ana/app/.runway/server/admin.token"
//	agent_url = "http://127.0.0.1:7041"
//	agent_token_file = "/home/ana/app/.runway/agent/agent.token"
//
// Comments (#) and blank lines are allowed; every value is a basic string.
type CLIConfig struct {
	Current  string
	Contexts map[string]*Context
}

// Context is one server the CLI talks to, and the token it sends it.
type Context struct {
	Server string
	// Token is the token itself (runway login with the token on stdin);
	// TokenFile a file holding it (runway up, runway login --token-file).
	Token     string
	TokenFile string
	// CAFile verifies an https server whose certificate a local CA issued.
	CAFile string
	// AgentURL and AgentTokenFile reach the agent of a `runway up`.
	AgentURL       string
	AgentTokenFile string
}

var contextNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// contextKeys maps the keys of a [contexts.NAME] table to their field.
var contextKeys = map[string]func(*Context) *string{
	"server":           func(c *Context) *string { return &c.Server },
	"token":            func(c *Context) *string { return &c.Token },
	"token_file":       func(c *Context) *string { return &c.TokenFile },
	"ca_file":          func(c *Context) *string { return &c.CAFile },
	"agent_url":        func(c *Context) *string { return &c.AgentURL },
	"agent_token_file": func(c *Context) *string { return &c.AgentTokenFile },
}

// ConfigPath is $XDG_CONFIG_HOME/runway/config.toml (~/.config by default).
func ConfigPath() (string, error) {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("find the config directory: %w (set XDG_CONFIG_HOME)", err)
		}
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "runway", "config.toml"), nil
}

// LoadCLIConfig reads the config file; a missing file is an empty config.
func LoadCLIConfig() (*CLIConfig, string, error) {
	path, err := ConfigPath()
	if err != nil {
		return nil, "", err
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &CLIConfig{Contexts: map[string]*Context{}}, path, nil
	}
	if err != nil {
		return nil, path, fmt.Errorf("read %s: %w", path, err)
	}
	cfg, err := ParseCLIConfig(b)
	if err != nil {
		return nil, path, fmt.Errorf("%s:%w", path, err)
	}
	return cfg, path, nil
}

// Save writes the config file (0600) atomically.
func (c *CLIConfig) Save(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	if err := fsutil.WriteFileAtomic(path, c.Encode(), fsutil.FileMode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ParseCLIConfig reads the TOML subset of config.toml. Errors start with
// the line number ("3: ...").
func ParseCLIConfig(b []byte) (*CLIConfig, error) {
	cfg := &CLIConfig{Contexts: map[string]*Context{}}
	if !utf8.Valid(b) {
		return nil, errors.New("1: the file is not UTF-8 text")
	}
	var cur *Context
	for i, line := range strings.Split(string(b), "\n") {
		n := i + 1
		line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
		if line == "" || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			name, err := parseTableHeader(line)
			if err != nil {
				return nil, fmt.Errorf("%d: %v", n, err)
			}
			if cfg.Contexts[name] != nil {
				return nil, fmt.Errorf("%d: context %q is defined twice", n, name)
			}
			cur = &Context{}
			cfg.Contexts[name] = cur
			continue
		}
		key, rest, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("%d: want key = \"value\", [contexts.NAME] or a # comment", n)
		}
		key = strings.TrimSpace(key)
		val, err := parseBasicString(strings.TrimSpace(rest))
		if err != nil {
			return nil, fmt.Errorf("%d: %s: %v", n, key, err)
		}
		if cur == nil {
			if key != "current" {
				return nil, fmt.Errorf("%d: unknown key %q before any [contexts.NAME] table (only current is allowed there)", n, key)
			}
			cfg.Current = val
			continue
		}
		field, ok := contextKeys[key]
		if !ok {
			return nil, fmt.Errorf("%d: unknown key %q in a context; known keys: %s", n, key, strings.Join(contextKeyNames(), ", "))
		}
		*field(cur) = val
	}
	return cfg, nil
}

func contextKeyNames() []string {
	out := make([]string, 0, len(contextKeys))
	for k := range contextKeys {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func parseTableHeader(line string) (string, error) {
	// "[contexts.NAME]", optionally followed by a comment. (The line starts
	// with "[", and a quoted name holds no "]": contextNameRe.)
	end := strings.Index(line, "]")
	if end < 0 {
		return "", errors.New("a table header is [contexts.NAME]")
	}
	if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != '#' {
		return "", fmt.Errorf("unexpected %q after the table header", trunc(rest, 16))
	}
	inner := line[1:end]
	rest, ok := strings.CutPrefix(strings.TrimSpace(inner), "contexts.")
	if !ok {
		return "", errors.New("the only tables are [contexts.NAME]")
	}
	name := rest
	if strings.HasPrefix(rest, `"`) {
		var err error
		if name, err = parseBasicString(rest); err != nil {
			return "", fmt.Errorf("context name: %v", err)
		}
	}
	if !contextNameRe.MatchString(name) {
		return "", fmt.Errorf("context name %q: use letters, digits, dots, dashes or underscores", name)
	}
	return name, nil
}

// parseBasicString reads a TOML basic string ("...") optionally followed by
// a comment.
func parseBasicString(s string) (string, error) {
	if !strings.HasPrefix(s, `"`) {
		return "", errors.New(`want a quoted string, such as "http://127.0.0.1:7040"`)
	}
	var out strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			rest := strings.TrimSpace(s[i+1:])
			if rest != "" && rest[0] != '#' {
				return "", fmt.Errorf("unexpected %q after the string", trunc(rest, 16))
			}
			return out.String(), nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", errors.New("the string ends in a backslash")
			}
			i++
			switch s[i] {
			case '"', '\\':
				out.WriteByte(s[i])
			case 'n':
				out.WriteByte('\n')
			case 't':
				out.WriteByte('\t')
			case 'r':
				out.WriteByte('\r')
			case 'u':
				if i+4 >= len(s) {
					return "", errors.New(`\u needs 4 hex digits`)
				}
				r, err := strconv.ParseUint(s[i+1:i+5], 16, 32)
				if err != nil || !utf8.ValidRune(rune(r)) {
					return "", errors.New(`\u needs 4 hex digits of a valid character`)
				}
				out.WriteRune(rune(r))
				i += 4
			default:
				return "", fmt.Errorf(`unknown escape \%c`, s[i])
			}
		case c < 0x20 && c != '\t':
			return "", errors.New("control characters must be escaped")
		default:
			out.WriteByte(c)
		}
	}
	return "", errors.New("the string is not closed")
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// Encode renders the config; ParseCLIConfig(Encode()) is the same config.
func (c *CLIConfig) Encode() []byte {
	var b strings.Builder
	b.WriteString("# Runway CLI contexts, written by `runway up`, `runway login` and `runway context`.\n")
	if c.Current != "" {
		fmt.Fprintf(&b, "current = %s\n", quote(c.Current))
	}
	names := make([]string, 0, len(c.Contexts))
	for n := range c.Contexts {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		ctx := c.Contexts[n]
		fmt.Fprintf(&b, "\n[contexts.%s]\n", quote(n))
		for _, k := range contextKeyNames() {
			if v := *contextKeys[k](ctx); v != "" {
				fmt.Fprintf(&b, "%s = %s\n", k, quote(v))
			}
		}
	}
	return []byte(b.String())
}
