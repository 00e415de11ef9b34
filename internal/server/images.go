package server

import (
	"net/http"
	"regexp"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/driver/docker"
)

var digestRe = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// pinImage makes the release run the pushed image given by digest, which
// must be of the repository of the manifest's image in an environment of
// target docker with a registry.
func pinImage(env *config.Environment, svc *config.Service, ref string) error {
	if !config.ImageTarget(env.Target) || env.Registry == "" {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"image\" pins a pushed image; environment %q has no registry (target %s): remove it, or set registry in the environment", env.Name, env.Target)
	}
	repo, tag, digest := config.SplitImage(ref)
	want, _, _ := config.SplitImage(docker.Image(svc))
	if tag != "" || !digestRe.MatchString(digest) || repo != want {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"image\" is %q; want %s@sha256:<64 hex digits>, the manifest's image pinned by the digest its push reported", ref, want)
	}
	svc.Image = ref
	return nil
}
