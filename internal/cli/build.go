package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/container"
	"github.com/runwayhq/runway/internal/driver/docker"
	"github.com/runwayhq/runway/internal/runenv"
)

func newBuildCmd(g *Globals) *cobra.Command {
	var env, file, version string
	cmd := &cobra.Command{
		Use:   "build [SERVICE] --env ENV",
		Short: "Build a service's image on the environment's container engine",
		Long: `Build sends the service's build context (its build block: context, dockerfile,
args; .dockerignore honoured) to the container engine of the environment
(its docker { host }, else DOCKER_HOST, else Docker's or podman's usual
socket), streams the build's output, and tags the image as the manifest's
image with the version (--version, else the manifest's). A failed build
names the step that failed. Exits 1 when the build fails.

For an aws environment the image is also pushed to the environment's ECR
registry (its registry setting), with ECR credentials got with your AWS
credentials (GetAuthorizationToken), and the digest reference that a
release pins is printed.`,
		Example: `  runway build web --env development --version 1.4.0
  runway build --env staging --file web/web.service.hcl --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, svc, err := resolveService(g, args, file, env, version, false)
			if err != nil {
				return err
			}
			name := svc.Name
			if svc.Version == "" {
				return UsageErrorf("service %q has no version: set version in its manifest or pass --version", name)
			}
			e := ws.Project.Environment(env)
			if !imageTarget(e.Target) || svc.Build == nil {
				return fmt.Errorf("service %q has nothing to build in environment %q: a build block in an environment with target docker, kubernetes or aws builds its image (environment %q has target %s)", name, env, env, e.Target)
			}
			host := ""
			if e.Docker != nil {
				host = e.Docker.Host
			}
			ctx := cmd.Context()
			eng, err := container.Connect(ctx, host)
			if err != nil {
				return err
			}
			defer eng.Close()
			out := g.Stderr
			if g.JSON() {
				out = io.Discard
			}
			img, id, err := buildImage(ctx, eng, svc, out)
			if err != nil {
				return err
			}
			pinned := ""
			if e.Target == "aws" {
				if e.Registry == "" {
					return fmt.Errorf("environment %q has no registry: set registry = \"<account>.dkr.ecr.<region>.amazonaws.com/%s\" (the service roots' repository_url without the service) to push to ECR", env, ws.Project.Name)
				}
				if pinned, err = pushECR(ctx, eng, e, img); err != nil {
					return err
				}
			}
			if g.JSON() {
				out := map[string]string{"service": name, "environment": env, "version": svc.Version, "image": img, "id": id}
				if pinned != "" {
					out["pinned"] = pinned
				}
				return writeJSON(g, out)
			}
			fmt.Fprintf(g.Stdout, "built %s (%s)\n", img, id)
			if pinned != "" {
				fmt.Fprintf(g.Stdout, "pushed %s as %s\n", img, pinned)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment whose engine builds the image (required)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "service manifest (default: the one in the current directory)")
	cmd.Flags().StringVar(&version, "version", "", "version the image is tagged with (default: the manifest's version)")
	return cmd
}

// resolveService loads the manifests (file, else the current directory;
// with warnings printed when asked), picks the service (the argument, or
// the only one) and resolves it for env, the version overridden by
// version when given. Errors are printed as diagnostics (exit 1) or are
// usage errors (exit 2).
func resolveService(g *Globals, args []string, file, env, version string, warnings bool) (*config.Workspace, *config.Service, error) {
	if env == "" {
		return nil, nil, UsageErrorf("--env is required: name the environment, such as --env staging")
	}
	paths := []string{"."}
	if file != "" {
		paths = []string{file}
	}
	ws, err := loadWorkspaceWarn(g, paths, warnings)
	if err != nil {
		return nil, nil, err
	}
	name, err := pickService(ws, args, file)
	if err != nil {
		return nil, nil, err
	}
	svc, diags := ws.Resolve(name, env)
	if diags.HasErrors() {
		_ = config.WriteDiagnostics(g.Stderr, ws.Files(), diags, g.Color())
		return nil, nil, silentError{ExitFailure}
	}
	if version != "" {
		if err := config.CheckVersion(version); err != nil {
			return nil, nil, UsageErrorf("--version: %v", err)
		}
		svc.Version = version
	}
	return ws, svc, nil
}

// imageTarget: environments of these targets run images, which runway
// build and deploy build (on the environment's engine for docker, on the
// local engine for kubernetes, whose nodes pull from the registry, and for
// aws, whose tasks pull from ECR).
func imageTarget(t string) bool { return config.ImageTarget(t) }

// prepareImage readies the image of a release to a docker or kubernetes
// environment (runway deploy): a service with a build block is built when
// the engine lacks its tag; with a registry (always, for kubernetes), the
// image is pushed and the digest reference it returns is what the release
// pins ("" without a registry). A kubernetes service given by image alone
// whose tag no local engine has is deployed by its tag: the nodes pull it,
// and the release says it is not pinned.
func prepareImage(ctx context.Context, g *Globals, ws *config.Workspace, env string, svc *config.Service) (string, error) {
	e := ws.Project.Environment(env)
	if e == nil || !imageTarget(e.Target) || (svc.Build == nil && e.Registry == "") {
		return "", nil
	}
	if e.Target == "kubernetes" && svc.Build == nil {
		return pushIfLocal(ctx, g, svc)
	}
	if e.Target == "aws" && svc.Build == nil {
		return "", nil // an image given by digest; the driver refuses one that is not
	}
	host := ""
	if e.Docker != nil {
		host = e.Docker.Host
	}
	eng, err := container.Connect(ctx, host)
	if err != nil {
		return "", err
	}
	defer eng.Close()
	img := docker.Image(svc)
	if svc.Build != nil {
		if _, err := eng.InspectImage(ctx, img); errors.Is(err, container.ErrNotFound) {
			fmt.Fprintf(g.Stderr, "image %s is not on the engine: building it\n", img)
			_, id, err := buildImage(ctx, eng, svc, g.Stderr)
			if err != nil {
				return "", err
			}
			fmt.Fprintf(g.Stderr, "built %s (%s)\n", img, id)
		} else if err != nil {
			return "", err
		}
	}
	if e.Registry == "" {
		return "", nil
	}
	var pinned string
	if e.Target == "aws" {
		pinned, err = pushECR(ctx, eng, e, img)
	} else {
		pinned, err = eng.Push(ctx, img, io.Discard)
	}
	if err != nil {
		return "", err
	}
	fmt.Fprintf(g.Stderr, "pushed %s as %s\n", img, pinned)
	return pinned, nil
}

// pushIfLocal pushes a kubernetes service's image when the local engine
// has its tag and returns the pinned digest; without an engine, or with
// the tag not on it, it returns "" (the release runs the tag).
func pushIfLocal(ctx context.Context, g *Globals, svc *config.Service) (string, error) {
	img := docker.Image(svc)
	eng, err := container.Connect(ctx, "")
	if err == nil {
		defer eng.Close()
		_, err = eng.InspectImage(ctx, img)
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "image %s is not on a local container engine: the release runs it by tag, not pinned to a digest (push it from here, or give the service a build block, to pin it)\n", img)
		return "", nil
	}
	pinned, err := eng.Push(ctx, img, io.Discard)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(g.Stderr, "pushed %s as %s\n", img, pinned)
	return pinned, nil
}

// buildImage builds svc's image on eng, streaming the output to out, and
// returns its reference (the manifest's image, the version expanded) and
// id. A failed step is named in the error.
func buildImage(ctx context.Context, eng *container.Engine, svc *config.Service, out io.Writer) (string, string, error) {
	img := docker.Image(svc)
	p := runenv.Process{Project: svc.Project, Service: svc.Name, Environment: svc.Environment, Version: svc.Version}
	args := map[string]string{}
	for k, v := range svc.Build.Args {
		args[k] = runenv.Expand(v, p.Values())
	}
	id, err := eng.Build(ctx, container.Build{
		Context:    filepath.Join(svc.Dir, svc.Build.Context),
		Dockerfile: svc.Build.Dockerfile,
		Args:       args,
		Tags:       []string{img},
		Labels: map[string]string{"dev.runway.project": svc.Project, "dev.runway.service": svc.Name,
			"dev.runway.version": svc.Version},
	}, out)
	var be *container.BuildError
	if errors.As(err, &be) {
		return "", "", fmt.Errorf("image %s of service %s: %w", img, svc.Name, be)
	}
	if err != nil {
		return "", "", err
	}
	return img, id, nil
}
