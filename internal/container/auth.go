package container

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
)

// Registry credentials are read where `docker login` and `podman login`
// write them, so a user logs in with the tool they know and Runway (the CLI
// pushing, the agent pulling a pinned digest) uses the same login. The
// files, first match wins:
//
//  1. $REGISTRY_AUTH_FILE (podman, skopeo, buildah);
//  2. $XDG_RUNTIME_DIR/containers/auth.json (podman login's default);
//  3. ~/.config/containers/auth.json;
//  4. $DOCKER_CONFIG/config.json, else ~/.docker/config.json (docker login).
//
// In a file, a credHelpers entry for the host wins over an auths entry, and
// the file's credsStore answers for a host it has no auths entry for; a
// helper is run as `docker-credential-<name> get` (the host on stdin, JSON
// on stdout), as Docker does. No credentials anywhere: the request is
// anonymous. Credentials never appear in an error.

// AuthFiles returns the credential files looked at, in order.
func AuthFiles(getenv func(string) string) []string {
	var files []string
	if f := getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	home := getenv("HOME")
	if home != "" {
		files = append(files, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	if d := getenv("DOCKER_CONFIG"); d != "" {
		files = append(files, filepath.Join(d, "config.json"))
	} else if home != "" {
		files = append(files, filepath.Join(home, ".docker", "config.json"))
	}
	return files
}

// RegistryHost returns the registry an image reference is pulled from:
// its first path component when that names a host (has a dot or a port,
// or is localhost), else Docker Hub.
func RegistryHost(ref string) string {
	first, _, ok := strings.Cut(ref, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return first
	}
	return "docker.io"
}

// authFile is what both tools write: docker's config.json and the
// containers auth.json share these members.
type authFile struct {
	Auths       map[string]authEntry `json:"auths"`
	CredHelpers map[string]string    `json:"credHelpers"`
	CredsStore  string               `json:"credsStore"`
}

type authEntry struct {
	Auth          string `json:"auth"`
	Username      string `json:"username"`
	Password      string `json:"password"`
	IdentityToken string `json:"identitytoken"`
}

// credentialHelper runs a docker-credential helper's get for host and
// returns its answer's JSON; a variable so tests can count calls.
var credentialHelper = func(ctx context.Context, name, host string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+name, "get")
	cmd.Stdin = strings.NewReader(host)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		// A helper says "credentials not found" on stdout with exit 1.
		if strings.Contains(strings.ToLower(stdout.String()), "not found") {
			return nil, errNoCredentials
		}
		return nil, fmt.Errorf("credential helper docker-credential-%s for %s: %v", name, host, err)
	}
	return stdout.Bytes(), nil
}

var errNoCredentials = errors.New("no credentials")

// LookupAuth returns the credentials for the registry host and the file
// they came from ("" and a zero AuthConfig when there are none).
func LookupAuth(ctx context.Context, host string, getenv func(string) string) (registry.AuthConfig, string, error) {
	for _, path := range AuthFiles(getenv) {
		b, err := os.ReadFile(path)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return registry.AuthConfig{}, "", fmt.Errorf("registry credentials: %w", err)
		}
		ac, found, err := parseAuthFile(ctx, b, host)
		if err != nil {
			return registry.AuthConfig{}, "", fmt.Errorf("registry credentials in %s: %w", path, err)
		}
		if found {
			return ac, path, nil
		}
	}
	return registry.AuthConfig{}, "", nil
}

// parseAuthFile finds host's credentials in one file's contents. Its errors
// name what is wrong, never a value.
func parseAuthFile(ctx context.Context, b []byte, host string) (registry.AuthConfig, bool, error) {
	var f authFile
	if len(bytes.TrimSpace(b)) == 0 {
		return registry.AuthConfig{}, false, nil
	}
	if err := json.Unmarshal(b, &f); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return registry.AuthConfig{}, false, fmt.Errorf("not valid JSON (at byte %d)", se.Offset)
		}
		return registry.AuthConfig{}, false, errors.New("not a credentials file: want {\"auths\": {HOST: {\"auth\": BASE64}}}")
	}
	if name, ok := f.CredHelpers[host]; ok && name != "" {
		return helperAuth(ctx, name, host)
	}
	for key, e := range f.Auths {
		if !sameRegistry(key, host) {
			continue
		}
		ac := registry.AuthConfig{ServerAddress: host, Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(e.Auth))
			if err != nil {
				return registry.AuthConfig{}, false, fmt.Errorf("auths[%q].auth is not base64", key)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return registry.AuthConfig{}, false, fmt.Errorf("auths[%q].auth is not base64 of USER:PASSWORD", key)
			}
			ac.Username, ac.Password = user, pass
		}
		if ac.Username == "" && ac.IdentityToken == "" {
			// docker login with a credsStore leaves an empty entry.
			break
		}
		return ac, true, nil
	}
	if f.CredsStore != "" {
		return helperAuth(ctx, f.CredsStore, host)
	}
	return registry.AuthConfig{}, false, nil
}

func helperAuth(ctx context.Context, name, host string) (registry.AuthConfig, bool, error) {
	if strings.ContainsAny(name, "/\\ ") {
		return registry.AuthConfig{}, false, fmt.Errorf("credential helper name %q is not a name", name)
	}
	out, err := credentialHelper(ctx, name, host)
	if errors.Is(err, errNoCredentials) {
		return registry.AuthConfig{}, false, nil
	}
	if err != nil {
		return registry.AuthConfig{}, false, err
	}
	var a struct{ Username, Secret string }
	if err := json.Unmarshal(out, &a); err != nil {
		return registry.AuthConfig{}, false, fmt.Errorf("credential helper docker-credential-%s answered something other than {\"Username\", \"Secret\"}", name)
	}
	ac := registry.AuthConfig{ServerAddress: host}
	if a.Username == "<token>" {
		ac.IdentityToken = a.Secret
	} else {
		ac.Username, ac.Password = a.Username, a.Secret
	}
	return ac, true, nil
}

// sameRegistry: an auths key is a host, or a URL of it ("https://host/v1/"),
// and Docker Hub has several names.
func sameRegistry(key, host string) bool {
	k := strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	hub := func(h string) bool {
		return h == "docker.io" || h == "index.docker.io" || h == "registry-1.docker.io"
	}
	return k == host || (hub(k) && hub(host))
}

// encodedAuth is the X-Registry-Auth header for ref's registry.
func (e *Engine) encodedAuth(ctx context.Context, ref string) (string, error) {
	ac, _, err := LookupAuth(ctx, RegistryHost(ref), e.getenv)
	if err != nil {
		return "", err
	}
	return authconfig.Encode(ac)
}

// authHint is added to a registry's refusal: where Runway looked.
func authHint(ref string, msg string) string {
	l := strings.ToLower(msg)
	if !strings.Contains(l, "unauthorized") && !strings.Contains(l, "authentication required") && !strings.Contains(l, "denied") {
		return ""
	}
	host := RegistryHost(ref)
	return fmt.Sprintf(" (log in with `docker login %s` or `podman login %s`; Runway reads $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json, ~/.config/containers/auth.json, then $DOCKER_CONFIG/config.json or ~/.docker/config.json)", host, host)
}
