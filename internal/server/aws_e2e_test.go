package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/awsfake"
	"github.com/runwayhq/runway/internal/driver/ecs"
)

// TestAWSKillServerMidRelease: a real server process with target aws (on the
// fake AWS, reached through AWS_ENDPOINT_URL as the SDK reads it) is killed
// with SIGKILL once a blue_green release created its new ECS service; the
// restarted server resumes the release, which succeeds with one ECS service
// and one target group of the service left, and no request sent through
// the load balancer meanwhile failed.
func TestAWSKillServerMidRelease(t *testing.T) {
	f := startFakeAWS(t, awsfake.Options{ThrottleEvery: 23})
	c, _ := startAWSCluster(t, f, nil, awsManifest{})
	c.applyProject()
	deploy := func(version string) string {
		out, err := c.cli("deploy", "web", "--env", "staging", "--version", version, "--yes", "--output", "json")
		if err != nil {
			t.Fatalf("runway deploy web %s: %v\n%s", version, err, out)
		}
		var rel struct{ ID string }
		if err := json.Unmarshal([]byte(out), &rel); err != nil {
			t.Fatalf("runway deploy output: %v\n%s", err, out)
		}
		return rel.ID
	}
	v1 := c.wait(deploy("1.0.0"), 2*time.Minute)
	mustState(t, v1, "Success")

	// Traffic through the load balancer, all along.
	var served, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			req, _ := http.NewRequest(http.MethodGet, "http://"+f.LoadBalancerAddr()+"/", nil)
			req.Host = "web.staging.localhost"
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				failed.Add(1)
			} else {
				served.Add(1)
			}
		}
	}()
	id := deploy("2.0.0")
	waitFor(t, 2*time.Minute, "the new release's ECS service", func() bool {
		svcs, _ := f.Resources("web-")
		return svcs == 2
	})
	// The release is mid-way (it ends only after scale_down_delay).
	if r, err := c.api.Release(context.Background(), id); err != nil || r.Done {
		t.Fatalf("the release before the kill: %+v, %v; want it running", r, err)
	}
	c.killServer()
	c.startServer()
	v2 := c.wait(id, 3*time.Minute)
	close(stop)
	wg.Wait()
	mustState(t, v2, "Success")
	if svcs, tgs := f.Resources("web-"); svcs != 1 || tgs != 1 {
		t.Errorf("%d ECS services and %d target groups of web after the resumed release, want one of each", svcs, tgs)
	}
	t.Logf("%d requests answered through the load balancer across the kill", served.Load())
	if n := failed.Load(); n != 0 || served.Load() == 0 {
		t.Errorf("%d of %d requests through the load balancer failed across the kill", n, n+served.Load())
	}
}

// startFakeAWS starts the fake AWS for a test (TimeScale 20 and a 200 ms
// consistency delay unless opt says otherwise); cleanup closes it and fails
// the test for every request the AWS models refused.
func startFakeAWS(t *testing.T, opt awsfake.Options) *awsfake.Fake {
	t.Helper()
	if opt.TimeScale == 0 {
		opt.TimeScale = 20
	}
	if opt.ConsistencyDelay == 0 {
		opt.ConsistencyDelay = 200 * time.Millisecond
	}
	f, err := awsfake.New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = f.Close()
		if v := f.Violations(); len(v) > 0 {
			t.Errorf("requests the AWS models refuse: %q", v)
		}
	})
	return f
}

// awsManifest varies the project startAWSCluster applies: Image replaces
// web's image (a digest of nothing pushed), "-" removes it; Extra is added
// to web's manifest, Environment to the staging environment.
type awsManifest struct{ Image, Extra, Environment string }

// startAWSCluster bootstraps environment staging on the fake, writes the
// Terraform outputs file (so, when given, changes the service outputs),
// starts a cluster whose server runs target aws on the fake (reached through
// AWS_ENDPOINT_URL as the SDK reads it), and applies a project with
// manifest web (the blue_green one below, changed by m).
func startAWSCluster(t *testing.T, f *awsfake.Fake, so func(*ecs.ServiceOutputs), m awsManifest) (*cluster, awsfake.Static) {
	t.Helper()
	st := f.Bootstrap("staging")
	c := startCluster(t)
	outputs := filepath.Join(c.dir, "aws-outputs.json")
	defaults := ecs.ServiceOutputs{SecurityGroupID: st.SecurityGroupID, ExecutionRoleARN: st.ExecutionRoleARN, TaskRoleARN: st.TaskRoleARN, LogGroup: st.LogGroupName}
	if so != nil {
		so(&defaults)
	}
	data, _ := json.Marshal(map[string]ecs.Env{"staging": {Region: st.Region, Account: st.Account, Cluster: st.ClusterName,
		ListenerARN: st.ListenerARN, VpcID: st.VpcID, SubnetIDs: st.SubnetIDs, ServiceOutputs: defaults}})
	if err := os.WriteFile(outputs, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.server.stop(t, syscall.SIGTERM)
	c.serverEnv = []string{"AWS_ENDPOINT_URL=" + f.URL(), "AWS_ACCESS_KEY_ID=fake", "AWS_SECRET_ACCESS_KEY=fake", "AWS_REGION=" + st.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	c.serverArgs = []string{"--aws-outputs", outputs}
	c.startServer()

	dir := filepath.Join(c.dir, "project")
	if err := os.WriteFile(filepath.Join(dir, "runway.hcl"), []byte(fmt.Sprintf("project %q {}\nenvironment \"staging\" {\n  target = \"aws\"\n  region = %q\n%s\n}\n", projectName, st.Region, m.Environment)), 0o644); err != nil {
		t.Fatal(err)
	}
	image := m.Image
	switch image {
	case "":
		image = `  image   = "123456789012.dkr.ecr.us-east-2.amazonaws.com/e2e/web@sha256:` + strings.Repeat("ab", 32) + `"`
	case "-":
		image = ""
	}
	manifest := `service "web" {
` + image + `
  command = ["serve"]
  port    = 8080
` + m.Extra + `
  health {
    path = "/healthz"
  }
  scale {
    desired = 2
  }
  deploy {
    strategy         = "blue_green"
    timeout          = "2m"
    scale_down_delay = "1s"
    drain_timeout    = "2s"
  }
}
`
	if err := os.WriteFile(filepath.Join(dir, "web.service.hcl"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	c.applyProject()
	return c, st
}
