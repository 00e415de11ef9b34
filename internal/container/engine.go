// Package container is Runway's client of a container engine: the Docker
// Engine API as served by Docker or by podman, through
// github.com/moby/moby/client with API version negotiation (podman 4.3
// settles on 1.41). It knows images and containers, not releases: the
// container target (internal/driver/docker) and the CLI's build command name
// what to run; this package runs it.
//
// Read in this order: engine.go (which engine: Resolve, Connect), build.go
// (an image from a directory: the tar context honouring .dockerignore, the
// streamed output, the failing step), image.go (tag, inspect, push, list,
// remove), run.go (containers by label: create, start, stop, list, inspect,
// logs) and task.go (one-off containers by name, re-attached after a crash).
//
// Decisions worth knowing:
//   - No engine-specific branches. Where Docker and podman differ on the
//     wire (build step lines "Step 1/3 :" vs "STEP 1/3:", the build's image
//     id, event names), the code reads what both send: the image is found by
//     its tag after a build, steps by one pattern, state by inspect.
//   - Ports are published on 127.0.0.1 only, on a port the engine picks; the
//     container's host port is read back from inspect.
//   - Health is not the engine's: podman 4.3 runs no HEALTHCHECK without
//     systemd, so callers probe the published port.
package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/client"
)

// HostSource says where an engine address came from.
type HostSource string

// The sources of an engine address, in the order Resolve tries them.
const (
	FromManifest HostSource = "docker.host"
	FromEnv      HostSource = "DOCKER_HOST"
	FromSocket   HostSource = "default socket"
	// FromFlag is an address given on a command line (runway agent
	// --docker-host).
	FromFlag HostSource = "--docker-host"
)

// Sockets returns the usual sockets of Docker and podman, in the order
// Resolve tries them: Docker's system socket, rootful podman's, then the
// user's podman and Docker sockets under XDG_RUNTIME_DIR and Docker
// Desktop's under HOME.
func Sockets(getenv func(string) string) []string {
	socks := []string{"/var/run/docker.sock", "/run/podman/podman.sock"}
	if x := getenv("XDG_RUNTIME_DIR"); x != "" {
		socks = append(socks, filepath.Join(x, "podman", "podman.sock"), filepath.Join(x, "docker.sock"))
	}
	if h := getenv("HOME"); h != "" {
		socks = append(socks, filepath.Join(h, ".docker", "run", "docker.sock"))
	}
	return socks
}

// ErrNoEngine is returned by Resolve when no address is given and no usual
// socket exists.
var ErrNoEngine = errors.New("no container engine found")

// Resolve chooses the engine's address: the manifest's docker.host when
// set, else DOCKER_HOST, else the first of Sockets that exists. exists
// reports whether a socket path exists (os.Stat in Connect).
func Resolve(manifestHost string, getenv func(string) string, exists func(string) bool) (string, HostSource, error) {
	if manifestHost != "" {
		return manifestHost, FromManifest, nil
	}
	if h := getenv("DOCKER_HOST"); h != "" {
		return h, FromEnv, nil
	}
	socks := Sockets(getenv)
	for _, s := range socks {
		if exists(s) {
			return "unix://" + s, FromSocket, nil
		}
	}
	return "", "", fmt.Errorf("%w: docker.host is not set in the environment's docker block, DOCKER_HOST is not set, and none of %s exists; start Docker or `podman system service`, or set docker { host = \"unix:///path/to.sock\" }",
		ErrNoEngine, strings.Join(socks, ", "))
}

// Engine is a connection to one container engine.
type Engine struct {
	api    *client.Client
	host   string
	source HostSource
	// getenv finds registry credentials (see LookupAuth); os.Getenv unless
	// a test sets another environment with SetEnv.
	getenv func(string) string
}

// SetEnv makes the engine look registry credentials up in env instead of
// the process's environment.
func (e *Engine) SetEnv(getenv func(string) string) { e.getenv = getenv }

// Connect resolves the engine's address (Resolve, with the process's
// environment), connects and pings it, so a wrong address fails here with
// where it came from rather than on the first container.
func Connect(ctx context.Context, manifestHost string) (*Engine, error) {
	host, src, err := Resolve(manifestHost, os.Getenv, func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	})
	if err != nil {
		return nil, err
	}
	return ConnectTo(ctx, host, src)
}

// ConnectTo connects to the engine at host and pings it; src says where
// the address came from, for the error.
func ConnectTo(ctx context.Context, host string, src HostSource) (*Engine, error) {
	api, err := client.New(client.WithTLSClientConfigFromEnv(), client.WithHost(host))
	if err != nil {
		return nil, fmt.Errorf("container engine %s (from %s): %w", host, src, err)
	}
	if _, err := api.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		api.Close()
		return nil, fmt.Errorf("container engine %s (from %s) does not answer: %w; is the engine running?", host, src, err)
	}
	return &Engine{api: api, host: host, source: src, getenv: os.Getenv}, nil
}

// Host returns the engine's address and where it came from.
func (e *Engine) Host() (string, HostSource) { return e.host, e.source }

// APIVersion returns the API version negotiated with the engine.
func (e *Engine) APIVersion() string { return e.api.ClientVersion() }

// Close releases the connection.
func (e *Engine) Close() error { return e.api.Close() }
