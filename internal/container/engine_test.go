package container

import (
	"errors"
	"strings"
	"testing"
)

func TestResolve(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	none := func(string) bool { return false }
	only := func(p string) func(string) bool { return func(s string) bool { return s == p } }
	cases := []struct {
		name     string
		manifest string
		env      map[string]string
		exists   func(string) bool
		want     string
		src      HostSource
	}{
		{"manifest wins", "unix:///m.sock", map[string]string{"DOCKER_HOST": "unix:///e.sock"}, only("/var/run/docker.sock"), "unix:///m.sock", FromManifest},
		{"then DOCKER_HOST", "", map[string]string{"DOCKER_HOST": "tcp://127.0.0.1:2375"}, only("/var/run/docker.sock"), "tcp://127.0.0.1:2375", FromEnv},
		{"then docker's socket", "", nil, only("/var/run/docker.sock"), "unix:///var/run/docker.sock", FromSocket},
		{"then rootful podman", "", nil, only("/run/podman/podman.sock"), "unix:///run/podman/podman.sock", FromSocket},
		{"then the user's podman", "", map[string]string{"XDG_RUNTIME_DIR": "/run/user/1000"}, only("/run/user/1000/podman/podman.sock"), "unix:///run/user/1000/podman/podman.sock", FromSocket},
		{"docker desktop", "", map[string]string{"HOME": "/home/u"}, only("/home/u/.docker/run/docker.sock"), "unix:///home/u/.docker/run/docker.sock", FromSocket},
		{"none", "", nil, none, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, src, err := Resolve(c.manifest, env(c.env), c.exists)
			if c.want == "" {
				if !errors.Is(err, ErrNoEngine) || !strings.Contains(err.Error(), "docker.host") || !strings.Contains(err.Error(), "/var/run/docker.sock") {
					t.Fatalf("want ErrNoEngine naming what was tried, got %v", err)
				}
				return
			}
			if err != nil || got != c.want || src != c.src {
				t.Fatalf("Resolve = %q, %q, %v; want %q, %q", got, src, err, c.want, c.src)
			}
		})
	}
}
