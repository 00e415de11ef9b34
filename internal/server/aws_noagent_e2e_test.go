package server_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/awsfake"
	"github.com/runwayhq/runway/internal/driver/ecs"
)

// TestAWSServerWithoutAgent: a server for aws environments needs no agent.
// Started with --aws-outputs and no agent token file, it runs releases to
// an aws environment; a release to the project's local environment is
// refused with what to do; without --aws-outputs the missing token file
// still refuses the start.
func TestAWSServerWithoutAgent(t *testing.T) {
	f := startFakeAWS(t, awsfake.Options{})
	st := f.Bootstrap("staging")
	dir := t.TempDir()
	addrs := freeAddrs(t, 3)
	// No agent runs: its address is free and its directory does not exist.
	c := &cluster{t: t, dir: dir, mark: fmt.Sprintf("e2e-%d-%d", os.Getpid(), markSeq.Add(1)), agentDir: filepath.Join(dir, "agent"),
		serverDir: filepath.Join(dir, "server"), agentAddr: addrs[0], proxyHTTP: addrs[1], serverAddr: addrs[2]}
	if err := os.MkdirAll(filepath.Join(dir, "project"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := c.startServerFails()
	if !strings.Contains(out, "read the agent's token") {
		t.Fatalf("a server with neither an agent nor aws outputs: %s", out)
	}

	outputs := filepath.Join(dir, "aws-outputs.json")
	data, _ := json.Marshal(map[string]ecs.Env{"staging": {Region: st.Region, Account: st.Account, Cluster: st.ClusterName,
		ListenerARN: st.ListenerARN, VpcID: st.VpcID, SubnetIDs: st.SubnetIDs,
		ServiceOutputs: ecs.ServiceOutputs{SecurityGroupID: st.SecurityGroupID, ExecutionRoleARN: st.ExecutionRoleARN, TaskRoleARN: st.TaskRoleARN, LogGroup: st.LogGroupName}}})
	if err := os.WriteFile(outputs, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c.serverEnv = []string{"AWS_ENDPOINT_URL=" + f.URL(), "AWS_ACCESS_KEY_ID=fake", "AWS_SECRET_ACCESS_KEY=fake", "AWS_REGION=" + st.Region,
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	c.serverArgs = []string{"--aws-outputs", outputs}
	c.startServer()
	t.Cleanup(func() {
		c.server.stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("server output:\n%s", c.server.out)
		}
	})
	if !strings.Contains(c.server.out.String(), "releases to local environments are refused until an agent runs") {
		t.Errorf("the server does not say it runs without an agent:\n%s", c.server.out)
	}

	project := fmt.Sprintf("project %q {}\nenvironment \"development\" {\n  target = \"local\"\n}\nenvironment \"staging\" {\n  target = \"aws\"\n  region = %q\n}\n", projectName, st.Region)
	manifest := `service "web" {
  command = ["serve"]
  port    = 8080
  health {
    path = "/healthz"
  }
  environment "staging" {
    image = "123456789012.dkr.ecr.us-east-2.amazonaws.com/e2e/web@sha256:` + strings.Repeat("cd", 32) + `"
  }
}
`
	for name, body := range map[string]string{"runway.hcl": project, "web.service.hcl": manifest} {
		if err := os.WriteFile(filepath.Join(dir, "project", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.applyProject()
	out, err := c.cliStdout("deploy", "web", "--env", "staging", "--version", "1.0.0", "--yes", "--output", "json")
	if err != nil {
		t.Fatalf("deploy to aws without an agent: %v\n%s", err, out)
	}
	var rel struct{ ID string }
	if err := json.Unmarshal([]byte(out), &rel); err != nil {
		t.Fatalf("runway deploy output: %v\n%s", err, out)
	}
	mustState(t, c.wait(rel.ID, 2*time.Minute), "Success")

	out, err = c.cli("deploy", "web", "--env", "development", "--version", "1.0.0", "--yes")
	if err == nil || !strings.Contains(out, `environment "development" has target local, and this server runs without an agent`) || !strings.Contains(out, "Start `runway agent`") {
		t.Fatalf("deploy to a local environment without an agent: %v\n%s", err, out)
	}
}
