package k8snode

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
)

// Image is an image of one layer: static binaries at the root of an
// empty file system, as a FROM scratch Dockerfile makes.
type Image struct {
	// Names are the image's references (registry/repo:tag), all of the
	// same bytes.
	Names []string
	// Files maps a path in the image to a file on this machine.
	Files      map[string]string
	Entrypoint []string
	Cmd        []string
	Env        []string
}

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// WriteImage writes img as an OCI image archive (oci-layout, index.json,
// blobs) at path, each name in the index's io.containerd.image.name
// annotation, which `ctr images import` tags it with.
func WriteImage(path string, img Image) error {
	var layer bytes.Buffer
	lw := tar.NewWriter(&layer)
	if err := lw.WriteHeader(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}); err != nil {
		return err
	}
	for dst, src := range img.Files {
		b, err := os.ReadFile(src)
		if err != nil {
			return err
		}
		if err := lw.WriteHeader(&tar.Header{Name: dst, Mode: 0o755, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := lw.Write(b); err != nil {
			return err
		}
	}
	if err := lw.Close(); err != nil {
		return err
	}
	layerDigest := digest(layer.Bytes())
	config, _ := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH, "os": "linux",
		"config": map[string]any{"Entrypoint": img.Entrypoint, "Cmd": img.Cmd, "Env": img.Env},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{layerDigest}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers": []map[string]any{{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layerDigest, "size": layer.Len()}},
	})
	var manifests []map[string]any
	for _, name := range img.Names {
		manifests = append(manifests, map[string]any{
			"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(manifest), "size": len(manifest),
			"platform":    map[string]string{"architecture": runtime.GOARCH, "os": "linux"},
			"annotations": map[string]string{"io.containerd.image.name": name},
		})
	}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests})

	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := tar.NewWriter(f)
	add := func(name string, b []byte) error {
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := w.Write(b)
		return err
	}
	for _, e := range []struct {
		name string
		b    []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", index},
		{blob(manifest), manifest},
		{blob(config), config},
		{blob(layer.Bytes()), layer.Bytes()},
	} {
		if err = add(e.name, e.b); err != nil {
			break
		}
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func blob(b []byte) string {
	d := digest(b)
	return "blobs/sha256/" + d[len("sha256:"):]
}

// BuildStatic builds the Go package pkg (a path relative to dir, the
// module's root) as a static binary at out.
func BuildStatic(dir, pkg, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("k8snode: build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// BuildPause writes the pod sandbox's image (PauseImage: ./pause, which
// waits for a signal) to dir/pause.tar and returns its path; root is the
// module's root.
func BuildPause(root, dir string) (string, error) {
	bin := filepath.Join(dir, "pause")
	if err := BuildStatic(root, "./internal/k8snode/pause", bin); err != nil {
		return "", err
	}
	out := filepath.Join(dir, "pause.tar")
	return out, WriteImage(out, Image{Names: []string{PauseImage}, Files: map[string]string{"pause": bin}, Cmd: []string{"/pause"}})
}
