package cli

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/container"
)

// connectEngine connects the agent (or the server) to the container
// engine of target docker: --docker-host when given (an error if it does
// not answer), else DOCKER_HOST (likewise), else the first usual socket of
// Docker or podman that exists (a warning if it does not answer). No
// engine at all is not an error: the agent then refuses image groups,
// saying how to give it one.
func connectEngine(ctx context.Context, flag string, logger *slog.Logger) (*container.Engine, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if flag != "" {
		e, err := container.ConnectTo(ctx, flag, container.FromFlag)
		if err != nil {
			return nil, err
		}
		return e, nil
	}
	host, src, err := container.Resolve("", os.Getenv, func(p string) bool {
		_, err := os.Stat(p)
		return err == nil
	})
	if errors.Is(err, container.ErrNoEngine) {
		logger.Info("no container engine: groups with an image are refused (give --docker-host to run them)")
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	e, err := container.ConnectTo(ctx, host, src)
	if err != nil {
		if src == container.FromEnv {
			return nil, err
		}
		logger.Warn("container engine not usable: groups with an image are refused", "host", host, "err", err)
		return nil, nil
	}
	logger.Info("container engine", "host", host, "from", string(src), "api_version", e.APIVersion())
	return e, nil
}

// engineFlagHelp is the help of runway agent --docker-host.
var engineFlagHelp = "address of the Docker Engine API (Docker or podman) that runs the instances of images, such as unix:///run/podman/podman.sock (default: DOCKER_HOST, else the first of " +
	strings.Join(container.Sockets(func(string) string { return "" }), ", ") + " and the user's podman and Docker sockets that exists)"
