package container

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
)

// ErrNotFound is returned when an image or container does not exist.
var ErrNotFound = errors.New("not found")

// Image is what Runway reads of an image.
type Image struct {
	ID          string
	Tags        []string
	RepoDigests []string
	// Ports are the ports the image EXPOSEs, as "8080/tcp".
	Ports  []string
	Labels map[string]string
}

// InspectImage returns the image ref names (a tag, a digest or an id),
// ErrNotFound when there is none.
func (e *Engine) InspectImage(ctx context.Context, ref string) (Image, error) {
	res, err := e.api.ImageInspect(ctx, ref)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Image{}, fmt.Errorf("image %s: %w", ref, ErrNotFound)
		}
		return Image{}, fmt.Errorf("inspect image %s: %w", ref, err)
	}
	img := Image{ID: imageID(res.ID), Tags: res.RepoTags, RepoDigests: res.RepoDigests}
	if res.Config != nil {
		for p := range res.Config.ExposedPorts {
			img.Ports = append(img.Ports, p)
		}
		img.Labels = res.Config.Labels
	}
	return img, nil
}

// imageID is an image id as "sha256:<hex>", however the engine wrote it.
func imageID(id string) string {
	if id == "" || strings.HasPrefix(id, "sha256:") {
		return id
	}
	return "sha256:" + id
}

// Tag gives the image source the name target.
func (e *Engine) Tag(ctx context.Context, source, target string) error {
	if _, err := e.api.ImageTag(ctx, client.ImageTagOptions{Source: source, Target: target}); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, target, err)
	}
	return nil
}

// Push pushes ref (host:port/name:tag) to its registry, streaming progress
// to out, and returns the pushed manifest's digest reference
// (host:port/name@sha256:…), which names exactly these bytes.
func (e *Engine) Push(ctx context.Context, ref string, out io.Writer) (string, error) {
	auth, err := e.encodedAuth(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return e.push(ctx, ref, auth, out)
}

// PushAs is Push with the registry credentials given (such as ECR's
// short-lived token) instead of those of the user's auth files.
func (e *Engine) PushAs(ctx context.Context, ref string, ac registry.AuthConfig, out io.Writer) (string, error) {
	auth, err := authconfig.Encode(ac)
	if err != nil {
		return "", fmt.Errorf("push %s: %w", ref, err)
	}
	return e.push(ctx, ref, auth, out)
}

func (e *Engine) push(ctx context.Context, ref, auth string, out io.Writer) (string, error) {
	resp, err := e.api.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: auth})
	if err != nil {
		return "", fmt.Errorf("push %s: %w%s", ref, err, authHint(ref, err.Error()))
	}
	defer resp.Close()
	var digest string
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return "", fmt.Errorf("push %s: %w", ref, err)
		}
		if m.Error != nil {
			return "", fmt.Errorf("push %s: %s%s", ref, m.Error.Message, authHint(ref, m.Error.Message))
		}
		if out != nil && m.Status != "" {
			fmt.Fprintln(out, m.Status)
		}
		// Both engines end with "<tag>: digest: sha256:… size: N".
		if i := strings.Index(m.Status, "digest: sha256:"); i >= 0 {
			digest = strings.Fields(m.Status[i+len("digest: "):])[0]
		}
	}
	if digest == "" {
		// Some engines report the digest only in the image's RepoDigests.
		img, err := e.InspectImage(ctx, ref)
		if err != nil {
			return "", err
		}
		name := repository(ref)
		for _, d := range img.RepoDigests {
			if repository(d) == name {
				return d, nil
			}
		}
		return "", fmt.Errorf("push %s: the engine reported no digest", ref)
	}
	return repository(ref) + "@" + digest, nil
}

// Pull fetches ref from its registry. A digest reference is what a release
// pins: podman does not record the digest it pushed among the image's
// RepoDigests (it pushes recompressed layers, so the manifest differs from
// its local one) and Docker does, so a pinned image is pulled by digest
// when the engine does not know it, the same way on both.
func (e *Engine) Pull(ctx context.Context, ref string) error {
	auth, err := e.encodedAuth(ctx, ref)
	if err != nil {
		return fmt.Errorf("pull %s: %w", ref, err)
	}
	resp, err := e.api.ImagePull(ctx, ref, client.ImagePullOptions{RegistryAuth: auth})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return fmt.Errorf("pull %s: %w", ref, ErrNotFound)
		}
		return fmt.Errorf("pull %s: %w%s", ref, err, authHint(ref, err.Error()))
	}
	defer resp.Close()
	for m, err := range resp.JSONMessages(ctx) {
		if err != nil {
			return fmt.Errorf("pull %s: %w", ref, err)
		}
		if m.Error != nil {
			return fmt.Errorf("pull %s: %s%s", ref, m.Error.Message, authHint(ref, m.Error.Message))
		}
	}
	return nil
}

// repository strips the tag or digest from an image reference.
func repository(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		return ref[:i]
	}
	// A colon after the last slash starts the tag; one before it is a port.
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i]
	}
	return ref
}

// Images lists the images that carry every label of labels.
func (e *Engine) Images(ctx context.Context, labels map[string]string) ([]Image, error) {
	f := client.Filters{}
	for k, v := range labels {
		f = f.Add("label", k+"="+v)
	}
	res, err := e.api.ImageList(ctx, client.ImageListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []Image
	for _, s := range res.Items {
		out = append(out, Image{ID: imageID(s.ID), Tags: s.RepoTags, RepoDigests: s.RepoDigests, Labels: s.Labels})
	}
	return out, nil
}

// RemoveImage removes the image ref names (untagging it when it has other
// names); a missing image is not an error.
func (e *Engine) RemoveImage(ctx context.Context, ref string) error {
	if _, err := e.api.ImageRemove(ctx, ref, client.ImageRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove image %s: %w", ref, err)
	}
	return nil
}
