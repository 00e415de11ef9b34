package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCLIConfigRoundTrip(t *testing.T) {
	src := `# mine
current = "local"

[contexts.local]
server = "http://127.0.0.1:7040"   # up
token_file = "/home/ana/app/.runway/server/admin.token"
agent_url = "http://127.0.0.1:7041"
agent_token_file = "/home/ana/app/.runway/agent/agent.token"

[contexts."prod.example"]
server = "https://runway.example.com"
token = "rwy_quoted\"and\\back\u00e9"
ca_file = "/etc/runway/ca.crt"
`
	cfg, err := ParseCLIConfig([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Current != "local" || cfg.Contexts["local"].AgentURL != "http://127.0.0.1:7041" || cfg.Contexts["prod.example"].Token != "rwy_quoted\"and\\backé" {
		t.Fatalf("parsed %+v %+v", cfg, cfg.Contexts["prod.example"])
	}
	again, err := ParseCLIConfig(cfg.Encode())
	if err != nil || !reflect.DeepEqual(again, cfg) {
		t.Fatalf("round trip: %v\n%s", err, cfg.Encode())
	}
}

func TestCLIConfigErrors(t *testing.T) {
	for src, want := range map[string]string{
		"server = \"x\"":                 "1: unknown key \"server\" before any [contexts.NAME]",
		"[contexts.a]\nsrever = \"x\"":   "2: unknown key \"srever\" in a context; known keys: agent_token_file, agent_url, ca_file, server, token, token_file",
		"[contexts.a]\nserver = x":       "2: server: want a quoted string",
		"[contexts.a]\nserver = \"x":     "2: server: the string is not closed",
		"[contexts.a]\n[contexts.a]":     "2: context \"a\" is defined twice",
		"[other]":                        "1: the only tables are [contexts.NAME]",
		"[contexts.a b]":                 "1: context name \"a b\"",
		"[contexts.a]\nserver = \"x\" y": "2: server: unexpected \"y\" after the string",
		"[contexts.a]\nserver = \"\\q\"": `2: server: unknown escape \q`,
		"[contexts.a]\njust words":       "2: want key = \"value\"",
	} {
		_, err := ParseCLIConfig([]byte(src))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", src, err, want)
		}
	}
}

// TestRecordUpContext: runway up's context lands in XDG_CONFIG_HOME (0600),
// current, with absolute paths; resolve then finds server and token, and
// gives this server's token to no other.
func TestRecordUpContext(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	tokenFile := filepath.Join(dir, "admin.token")
	if err := os.WriteFile(tokenFile, []byte("rwy_abc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	g := &Globals{Stdout: &out, Stderr: &out}
	RecordUpContext(g, "127.0.0.1:7040", tokenFile, "http://127.0.0.1:7041", filepath.Join(dir, "agent.token"))
	path := filepath.Join(dir, "config", "runway", "config.toml")
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("config.toml: %v %v\n%s", st, err, out.String())
	}
	r, err := g.resolve()
	if err != nil || r.Server != "http://127.0.0.1:7040" || r.Token != "rwy_abc" || r.Context != "local" {
		t.Fatalf("resolve = %+v, %v", r, err)
	}
	g.Server = "http://10.0.0.9:7040"
	if r, err := g.resolve(); err != nil || r.Token != "" {
		t.Fatalf("another server got token %q (%v)", r.Token, err)
	}
	g.Server, g.Token = "http://10.0.0.9:7040", "rwy_explicit"
	if r, _ := g.resolve(); r.Token != "rwy_explicit" {
		t.Fatalf("--token did not win: %+v", r)
	}
}

// FuzzParseCLIConfig: never a panic; what parses encodes to the same config.
func FuzzParseCLIConfig(f *testing.F) {
	f.Add([]byte("current = \"a\"\n[contexts.a]\nserver = \"http://x\"\n"))
	f.Add([]byte("[contexts.\"b\"] # c\ntoken = \"\\u00e9\\n\\t\"\n"))
	f.Add([]byte("[contexts.a]\nserver = \"x\" # y\n\r\n"))
	f.Add([]byte("[contexts]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, err := ParseCLIConfig(b)
		if err != nil {
			return
		}
		again, err := ParseCLIConfig(cfg.Encode())
		if err != nil {
			t.Fatalf("encoded config does not parse: %v\n%s", err, cfg.Encode())
		}
		if !reflect.DeepEqual(again, cfg) {
			t.Fatalf("round trip changed the config: %+v -> %+v", cfg, again)
		}
	})
}
