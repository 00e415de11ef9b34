package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/server"
)

// loadWorkspace loads manifests and prints their errors; a nil workspace
// means the caller should fail with the returned error. Warnings are
// printed by the commands that judge manifests (validate, deploy) only.
func loadWorkspace(g *Globals, paths []string) (*config.Workspace, error) {
	return loadWorkspaceWarn(g, paths, false)
}

func loadWorkspaceWarn(g *Globals, paths []string, warnings bool) (*config.Workspace, error) {
	ws, diags := config.LoadWith(loadOptions(), paths...)
	if !warnings {
		diags = config.OnlyErrors(diags)
	}
	if len(diags) > 0 {
		var files map[string]*hcl.File
		if ws != nil {
			files = ws.Files()
		}
		if err := config.WriteDiagnostics(g.Stderr, files, diags, g.Color()); err != nil {
			return nil, err
		}
	}
	if diags.HasErrors() {
		return nil, silentError{ExitFailure}
	}
	return ws, nil
}

func serviceNames(ws *config.Workspace) []string {
	out := []string{}
	for _, s := range ws.Services {
		out = append(out, s.Name)
	}
	return out
}

// writeNew creates a file (and its directory), refusing to overwrite an existing one.
func writeNew(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory for %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if os.IsExist(err) {
			return fmt.Errorf("%s already exists; Runway does not overwrite it (remove it first or choose another directory)", path)
		}
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// displayPath shows p relative to the working directory when it lies below it.
func displayPath(p string) string {
	wd, err := os.Getwd()
	if err != nil {
		return p
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return p
	}
	rel, err := filepath.Rel(wd, abs)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return p
	}
	return rel
}

// loadOptions are the options every command loads manifests with: the
// limits the targets declare, so `runway validate` refuses what the server
// and the targets would.
func loadOptions() config.Options {
	return config.Options{Targets: server.TargetLimits(), Exposed: imagePorts()}
}

// imagePorts reads what images expose from the container engines that
// answer within a second (connected once per address, and only when a
// docker environment's image is to be checked); an engine that does not
// answer, or an image it lacks, is not judged.
func imagePorts() func(host, image string) ([]string, bool) {
	engines := map[string]*container.Engine{}
	return func(host, image string) ([]string, bool) {
		e, tried := engines[host]
		if !tried {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			e, _ = container.Connect(ctx, host)
			cancel()
			engines[host] = e
		}
		if e == nil {
			return nil, false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		img, err := e.InspectImage(ctx, image)
		if err != nil {
			return nil, false
		}
		return img.Ports, true
	}
}
