package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"

	"github.com/runwayhq/runway/internal/runenv"
)

// The rules of target docker: its environment settings (docker block,
// registry) and a service's image and build.

var (
	// registryRe is host[:port] followed by an optional /path prefix, lower
	// case as image repositories are.
	registryRe = regexp.MustCompile(`^[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)*$`)
	// repoRe is an image repository: optional registry host[:port], then
	// lower-case path components.
	repoRe   = regexp.MustCompile(`^([a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?/)?[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*$`)
	tagRe    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	digestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// SplitImage splits an image reference into its repository, tag and
// digest ("" when absent): "r.io:5000/web:1.2@sha256:…" gives
// "r.io:5000/web", "1.2", "sha256:…". A colon before the last slash is a
// registry's port, not a tag.
func SplitImage(ref string) (repo, tag, digest string) {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref, digest = ref[:i], ref[i+1:]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:], digest
	}
	return ref, "", digest
}

// ImageTarget reports whether environments of target t run images (so a
// service may have a build block there, and the environment a registry):
// docker, kubernetes and aws (ECR).
func ImageTarget(t string) bool { return t == "docker" || t == "kubernetes" || t == "aws" }

// DefaultImage is the image a service with a build block and no image is
// tagged with: <service>:{{VERSION}}, under the environment's registry when
// it has one.
func DefaultImage(service, registry string) string {
	if registry != "" {
		return registry + "/" + service + ":{{VERSION}}"
	}
	return service + ":{{VERSION}}"
}

func checkDockerEnvironment(c *checker, e *Environment, base string) {
	if e.Target != "docker" {
		if e.Docker != nil {
			c.errf(base+".docker", "docker block is used by target docker only", "Environment %q has target %s, which does not use a container engine of its own; remove the docker block or set target = \"docker\".", e.Name, e.Target)
		}
		if e.Registry != "" && !ImageTarget(e.Target) {
			c.errf(base+".registry", "registry is used by targets docker, kubernetes and aws only", "Environment %q has target %s; remove registry or set target = \"docker\".", e.Name, e.Target)
		}
	}
	if e.Docker != nil && e.Docker.Host != "" {
		if why := engineHostProblem(e.Docker.Host); why != "" {
			c.errf(base+".docker.host", "Invalid engine address", "host %q %s; write unix:///var/run/docker.sock, unix:///run/podman/podman.sock or tcp://HOST:PORT.", e.Docker.Host, why)
		}
	}
	if e.Registry != "" && !registryRe.MatchString(e.Registry) {
		c.errf(base+".registry", "Invalid registry", "registry %q must be host[:port]/prefix in lower case, without a scheme or tag, such as \"registry.acme.com/team\" or \"127.0.0.1:5000/runway\".", e.Registry)
	}
}

// engineHostProblem says what is wrong with a Docker Engine API address,
// "" when nothing is.
func engineHostProblem(h string) string {
	u, err := url.Parse(h)
	if err != nil {
		return "is not a URL"
	}
	switch u.Scheme {
	case "unix":
		if !strings.HasPrefix(u.Path, "/") || u.Host != "" {
			return "must name a socket by its absolute path (three slashes)"
		}
	case "tcp":
		if u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") {
			return "must be tcp://HOST:PORT"
		}
	case "":
		return "has no scheme"
	default:
		return fmt.Sprintf("has scheme %s, which Runway does not speak (unix or tcp)", u.Scheme)
	}
	return ""
}

func checkContainerService(c *checker, s *Service, env *Environment) {
	if s.Build != nil && !ImageTarget(env.Target) {
		c.errf("build", "build is used by targets docker, kubernetes and aws only", "Environment %q has target %s; move the build block into the overrides of docker, kubernetes or aws environments, or give an image.", env.Name, env.Target)
		return
	}
	if env.Target == "docker" && s.Image != "" {
		checkImage(c, "image", s.Image)
	}
	checkKubernetesImage(c, s, env)
	if b := s.Build; b != nil {
		if filepath.IsAbs(b.Context) {
			c.errf("build.context", "build context must be relative", "context %q is absolute; give it relative to the manifest's directory so the project builds on every machine.", b.Context)
		}
		df := filepath.ToSlash(filepath.Clean(b.Dockerfile))
		if filepath.IsAbs(b.Dockerfile) || df == ".." || strings.HasPrefix(df, "../") {
			c.errf("build.dockerfile", "Dockerfile outside the build context", "dockerfile %q must lie inside context %q (the engine sees only the context); move it there or widen context.", b.Dockerfile, b.Context)
		}
		for _, k := range sortedKeys(b.Args) {
			if !envKeyRe.MatchString(k) {
				c.errf("build.args."+k, "Invalid build argument name", "%q is not a valid ARG name: use letters, digits and underscores, not starting with a digit.", k)
			}
			checkTemplates(c, "build.args."+k, b.Args[k])
		}
	}
}

// checkImage requires a reference a release can pin: a repository, and a
// tag or a digest (templates such as {{VERSION}} stand for tag text).
func checkImage(c *checker, path, ref string) {
	checkTemplates(c, path, ref)
	// Template values stand for text of a tag; test the shape with a stand-in.
	shape := ref
	for _, p := range runenv.Placeholders(ref) {
		shape = strings.ReplaceAll(shape, p.Text, "x")
	}
	repo, tag, digest := SplitImage(shape)
	switch {
	case strings.Contains(ref, "://") || !repoRe.MatchString(repo):
		c.errf(path, "Invalid image", "image %q is not an image reference: write [registry/]name:tag in lower case, without a scheme, such as \"registry.acme.com/web:{{VERSION}}\".", ref)
	case tag == "" && digest == "":
		c.errf(path, "Image without tag or digest", "image %q names no tag or digest, so a release could not say which bytes it runs; write %q (the release's version) or %q.", ref, repo+":{{VERSION}}", repo+"@sha256:<digest>")
	case tag != "" && !tagRe.MatchString(tag):
		c.errf(path, "Invalid image tag", "tag %q of image %q must be letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-').", tag, ref)
	case digest != "" && !digestRe.MatchString(digest):
		c.errf(path, "Invalid image digest", "digest %q of image %q must be sha256: followed by 64 lower-case hex digits.", digest, ref)
	}
}

// CheckBuildContexts checks, on the machine that holds the manifests, that
// every build context of a docker or kubernetes environment exists and holds its
// Dockerfile. Load runs it (runway validate, build and deploy read files);
// the server, which gets manifest sources and never the files, does not.
func (w *Workspace) CheckBuildContexts() hcl.Diagnostics {
	if w.Project == nil {
		return nil
	}
	return w.eachImageEnv(func(c *checker, s *Service, _ *Environment) {
		if s.Build == nil || filepath.IsAbs(s.Build.Context) {
			return
		}
		dir := filepath.Join(s.Dir, s.Build.Context)
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			c.errf("build.context", "Build context not found", "context %q is %s, which is not a directory; create it or correct the path (relative to %s).", s.Build.Context, dir, s.Dir)
		} else if _, err := os.Stat(filepath.Join(dir, s.Build.Dockerfile)); err != nil {
			c.errf("build.dockerfile", "Dockerfile not found", "dockerfile %q is not in context %s; create it or set dockerfile to its path inside the context.", s.Build.Dockerfile, dir)
		}
	})
}

// eachImageEnv runs check on every service resolved for every environment
// that runs images (targets docker and kubernetes; services that do not
// resolve are left to validation), each with a checker locating its own
// fields, and returns what they found.
func (w *Workspace) eachImageEnv(check func(c *checker, s *Service, env *Environment)) hcl.Diagnostics {
	var diags hcl.Diagnostics
	names := make([]string, 0, len(w.Services))
	for _, m := range w.Services {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, env := range w.Project.Environments {
			if !ImageTarget(env.Target) {
				continue
			}
			s, src, d := w.resolve(name, env.Name)
			if d.HasErrors() || s == nil {
				continue
			}
			c := &checker{src: src}
			check(c, s, env)
			diags = append(diags, c.diags...)
		}
	}
	return dedupe(diags)
}

// checkExposed warns where a docker environment's service listens on a
// port its image (on the engine, when Options.Exposed can read it) does
// not expose. An image that exposes nothing, or whose tag needs a version
// not given yet, is not judged.
func (w *Workspace) checkExposed() hcl.Diagnostics {
	if w.Project == nil || w.opts.Exposed == nil {
		return nil
	}
	return w.eachImageEnv(func(c *checker, s *Service, env *Environment) {
		if s.Image == "" {
			return
		}
		p := runenv.Process{Project: w.Project.Name, Service: s.Name, Environment: env.Name, Version: s.Version}
		image := runenv.Expand(s.Image, p.Values())
		if strings.Contains(image, "{{") || (s.Version == "" && strings.Contains(s.Image, "VERSION")) {
			return
		}
		host := ""
		if env.Docker != nil {
			host = env.Docker.Host
		}
		ports, ok := w.opts.Exposed(host, image)
		want := strconv.Itoa(s.Port) + "/tcp"
		if !ok || len(ports) == 0 || slices.Contains(ports, want) {
			return
		}
		c.warnf("port", "Port not exposed by the image", "image %s exposes %s, not %s, and the service listens on port %d inside its container; expose it in the Dockerfile (EXPOSE %d) or set port to one the image serves.",
			image, strings.Join(ports, ", "), want, s.Port, s.Port)
	})
}
