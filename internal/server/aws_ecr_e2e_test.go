package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/awsfake"
	"github.com/runwayhq/runway/internal/podmantest"
)

// TestAWSBuildPushesToECR: for an aws environment `runway build` builds the
// image on the local engine (podman) and pushes it to the environment's
// registry with the credentials ECR's GetAuthorizationToken handed out (the
// fake ECR's token is the user and password of a real local registry that
// refuses anyone else), and prints the digest reference; `runway deploy`
// pins that digest, and the release's ECS tasks run exactly that
// reference, which the registry serves.
func TestAWSBuildPushesToECR(t *testing.T) {
	pe := podmantest.Shared(t, podmantest.Options{Registry: true})
	f := startFakeAWS(t, awsfake.Options{Registry: pe.AuthRegistry, RegistryUser: pe.AuthUser, RegistryPassword: pe.AuthPassword})
	// The CLI's environment: the engine, and the AWS SDK's credentials and
	// endpoint (as a user's profile would give them).
	t.Setenv("DOCKER_HOST", pe.Host)
	for k, v := range map[string]string{"AWS_ENDPOINT_URL": f.URL(), "AWS_ACCESS_KEY_ID": "fake", "AWS_SECRET_ACCESS_KEY": "fake",
		"AWS_REGION": f.Region(), "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null"} {
		t.Setenv(k, v)
	}
	c, _ := startAWSCluster(t, f, nil, awsManifest{Image: "-", Environment: fmt.Sprintf("  registry = %q", pe.AuthRegistry+"/e2e"),
		Extra: "  build {\n    context = \"app\"\n  }"})
	_, app := c.helloApp()
	if err := os.WriteFile(filepath.Join(app, "Dockerfile"), []byte("FROM scratch\nCOPY hello /hello\nEXPOSE 8080\nCMD [\"/hello\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	repo := pe.AuthRegistry + "/e2e/web"

	out, err := c.cliStdout("build", "web", "--env", "staging", "--version", "1.0.0", "--output", "json")
	if err != nil {
		t.Fatalf("runway build: %v\n%s", err, out)
	}
	var built struct{ Image, Pinned string }
	if err := json.Unmarshal([]byte(out), &built); err != nil {
		t.Fatalf("runway build output: %v\n%s", err, out)
	}
	if built.Image != repo+":1.0.0" || !strings.HasPrefix(built.Pinned, repo+"@sha256:") {
		t.Fatalf("runway build: image %q pinned %q, want %s:1.0.0 pushed as %s@sha256:...", built.Image, built.Pinned, repo, repo)
	}
	// The registry has those bytes, for its user only.
	manifestURL := "http://" + pe.AuthRegistry + "/v2/e2e/web/manifests/" + strings.TrimPrefix(built.Pinned, repo+"@")
	get := func(auth bool) int {
		req, _ := http.NewRequest(http.MethodHead, manifestURL, nil)
		req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
		if auth {
			req.SetBasicAuth(pe.AuthUser, pe.AuthPassword)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(true); code != http.StatusOK {
		t.Fatalf("the registry answers %d for the pushed digest", code)
	}
	if code := get(false); code != http.StatusUnauthorized {
		t.Fatalf("the registry answers %d without credentials, want 401 (the push must have used ECR's)", code)
	}

	out, err = c.cliStdout("deploy", "web", "--env", "staging", "--version", "1.0.0", "--yes", "--output", "json")
	if err != nil {
		t.Fatalf("runway deploy: %v\n%s", err, out)
	}
	var rel struct{ ID string }
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatalf("runway deploy output: %v\n%s", err, out)
	}
	r := c.wait(rel.ID, 2*time.Minute)
	mustState(t, r, "Success")
	var spec struct{ Image string }
	if err := json.Unmarshal(r.Manifest, &spec); err != nil {
		t.Fatal(err)
	}
	if spec.Image != built.Pinned {
		t.Fatalf("the release runs %q, want the digest runway build pushed, %s (ECR's tags are immutable: a second push must be the same manifest)", spec.Image, built.Pinned)
	}
	if got := f.TaskImages("web-"); len(got) != 1 || got[0] != spec.Image {
		t.Fatalf("the ECS tasks run %v, want only %s", got, spec.Image)
	}
}
