package container

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/podmantest"
)

// envOf is a getenv over m only.
func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeAuthFile(t *testing.T, host, user, pass string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "auth.json")
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	if err := os.WriteFile(path, fmt.Appendf(nil, `{"auths": {%q: {"auth": %q}}}`, host, auth), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPushPullWithCredentials: a registry that wants a login refuses an
// anonymous push with a hint naming where Runway looks, takes the push with
// the login podman wrote (REGISTRY_AUTH_FILE), and a container runs from
// the pinned digest pulled with it; a wrong password is refused; no
// password is ever in an error.
func TestPushPullWithCredentials(t *testing.T) {
	e, pe := connect(t, podmantest.Options{Registry: true})
	tag := buildHello(t, e)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	remote := pe.AuthRegistry + "/runway/hello:auth"
	if err := e.Tag(ctx, tag, remote); err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	e.SetEnv(envOf(map[string]string{"HOME": home}))
	_, err := e.Push(ctx, remote, io.Discard)
	if err == nil {
		t.Fatal("anonymous push to a registry that wants a login succeeded")
	}
	if !strings.Contains(err.Error(), "podman login "+pe.AuthRegistry) || !strings.Contains(err.Error(), "REGISTRY_AUTH_FILE") {
		t.Fatalf("anonymous push: %v; want a hint to log in and where Runway looks", err)
	}

	wrong := "wrong-" + pe.AuthPassword
	e.SetEnv(envOf(map[string]string{"HOME": home, "REGISTRY_AUTH_FILE": writeAuthFile(t, pe.AuthRegistry, pe.AuthUser, wrong)}))
	_, err = e.Push(ctx, remote, io.Discard)
	if err == nil {
		t.Fatal("push with a wrong password succeeded")
	}
	if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), pe.AuthPassword) {
		t.Fatal("a push error contains a password")
	}

	e.SetEnv(envOf(map[string]string{"HOME": home, "REGISTRY_AUTH_FILE": writeAuthFile(t, pe.AuthRegistry, pe.AuthUser, pe.AuthPassword)}))
	ref, err := e.Push(ctx, remote, io.Discard)
	if err != nil {
		if strings.Contains(err.Error(), pe.AuthPassword) {
			t.Fatal("a push error contains the password")
		}
		t.Fatal(err)
	}
	if !strings.HasPrefix(ref, pe.AuthRegistry+"/runway/hello@sha256:") {
		t.Fatalf("Push = %q, want a digest in %s", ref, pe.AuthRegistry)
	}
	for _, n := range []string{remote} {
		if err := e.RemoveImage(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	// The digest is not on the engine (podman pushes recompressed layers):
	// Run pulls it, with the login.
	name := uniqueName(t, e)
	c, err := e.Run(ctx, Spec{Name: name, Image: ref, Port: 8080, Init: true})
	if err != nil {
		t.Fatal(err)
	}
	awaitGet(t, fmt.Sprintf("http://127.0.0.1:%d/healthz", c.HostPort))
}

// TestLookupAuth: the files in their order, docker's and podman's forms,
// Docker Hub's names, a credential helper (a real program on PATH), and
// errors that name the file and the member, never a value.
func TestLookupAuth(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	podman := write("run/containers/auth.json", fmt.Sprintf(`{"auths": {"reg.example.com:5000": {"auth": %q}}}`, b64("pod:pod-secret-1")))
	write("home/.docker/config.json", fmt.Sprintf(`{"auths": {"https://index.docker.io/v1/": {"auth": %q}, "reg.example.com:5000": {"auth": %q}, "helped.example.com": {}},
 "credHelpers": {"helper.example.com": "rwytest"}, "credsStore": "rwytest"}`, b64("hub:hub-secret-2"), b64("dock:dock-secret-3")))
	// A credential helper as Docker runs them: host on stdin, JSON out.
	bin := filepath.Join(dir, "bin")
	write("bin/docker-credential-rwytest", `#!/bin/sh
read host
case "$host" in
  helper.example.com) echo '{"ServerURL":"helper.example.com","Username":"helped","Secret":"helper-secret-4"}' ;;
  token.example.com) echo '{"ServerURL":"token.example.com","Username":"<token>","Secret":"helper-token-5"}' ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`)
	if err := os.Chmod(filepath.Join(bin, "docker-credential-rwytest"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	env := map[string]string{"XDG_RUNTIME_DIR": filepath.Join(dir, "run"), "HOME": filepath.Join(dir, "home")}

	for _, c := range []struct {
		host, user, pass, token, from string
	}{
		{host: "reg.example.com:5000", user: "pod", pass: "pod-secret-1", from: podman}, // podman's file comes first
		{host: "docker.io", user: "hub", pass: "hub-secret-2", from: "config.json"},
		{host: "helper.example.com", user: "helped", pass: "helper-secret-4", from: "config.json"},
		{host: "token.example.com", token: "helper-token-5", from: "config.json"}, // credsStore
		{host: "helped.example.com", from: ""},                                    // empty entry, the store has none
		{host: "other.example.com", from: ""},
	} {
		ac, from, err := LookupAuth(ctx, c.host, envOf(env))
		if err != nil {
			t.Fatalf("%s: %v", c.host, err)
		}
		if ac.Username != c.user || ac.Password != c.pass || ac.IdentityToken != c.token || !strings.HasSuffix(from, c.from) || (c.from == "" && from != "") {
			t.Errorf("%s: user %q token set %v from %q; want user %q from %q", c.host, ac.Username, ac.IdentityToken != "", from, c.user, c.from)
		}
	}

	// DOCKER_CONFIG replaces ~/.docker; REGISTRY_AUTH_FILE comes first.
	first := write("first.json", fmt.Sprintf(`{"auths": {"reg.example.com:5000": {"auth": %q}}}`, b64("first:first-secret-6")))
	env["REGISTRY_AUTH_FILE"] = first
	if ac, from, _ := LookupAuth(ctx, "reg.example.com:5000", envOf(env)); ac.Username != "first" || from != first {
		t.Errorf("REGISTRY_AUTH_FILE: user %q from %q", ac.Username, from)
	}

	for _, c := range []struct{ text, want string }{
		{`{"auths": {"bad.example.com": {"auth": "%%%not-base64"}}}`, `auths["bad.example.com"].auth is not base64`},
		{fmt.Sprintf(`{"auths": {"bad.example.com": {"auth": %q}}}`, b64("no-colon-secret-7")), "USER:PASSWORD"},
		{`{"auths": {"bad.example.com": {"auth": "abc="}`, "not valid JSON"},
		{`["secret-list-8"]`, "not a credentials file"},
	} {
		p := write("bad.json", c.text)
		_, _, err := LookupAuth(ctx, "bad.example.com", envOf(map[string]string{"REGISTRY_AUTH_FILE": p}))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: %v; want the file and %q", c.text, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error shows a value: %v", c.text, err)
		}
	}
}

func TestRegistryHost(t *testing.T) {
	for ref, want := range map[string]string{
		"localhost:5000/web:1":           "localhost:5000",
		"localhost/web:1":                "localhost",
		"registry.acme.com/team/web@sha": "registry.acme.com",
		"library/nginx:1":                "docker.io",
		"nginx":                          "docker.io",
	} {
		if got := RegistryHost(ref); got != want {
			t.Errorf("RegistryHost(%q) = %q, want %q", ref, got, want)
		}
	}
}

// FuzzParseAuthFile: any file contents give credentials or an error, and
// an error never shows the password of a well-formed entry.
func FuzzParseAuthFile(f *testing.F) {
	f.Add([]byte(`{"auths": {"h": {"auth": "dTpw"}}}`), "h")
	f.Add([]byte(`{"auths": {"https://index.docker.io/v1/": {"username": "u", "password": "p"}}}`), "docker.io")
	f.Add([]byte(`{"credHelpers": {"x": "a/b"}}`), "x")
	f.Add([]byte(`{"auths": {"h": {"auth": "%%"}}}`), "h")
	f.Fuzz(func(t *testing.T, b []byte, host string) {
		// No helper runs in the fuzzer.
		prev := credentialHelper
		credentialHelper = func(context.Context, string, string) ([]byte, error) { return nil, errNoCredentials }
		defer func() { credentialHelper = prev }()
		_, _, err := parseAuthFile(context.Background(), b, host)
		if err == nil {
			return
		}
		const pass = "Fz9-secret-never-shown"
		_, _, err = parseAuthFile(context.Background(), append(append([]byte(`{"auths": {"x": {"password": "`+pass+`"}}, "y": `), b...), '}'), host)
		if err != nil && strings.Contains(err.Error(), pass) {
			t.Fatalf("error shows a password: %v", err)
		}
	})
}
