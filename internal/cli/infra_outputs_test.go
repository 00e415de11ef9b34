package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runwayhq/runway/internal/driver/ecs"
)

// writeState writes a root's local state (format 4, as terraform apply
// leaves it without a backend) holding only outputs: name -> [value, type].
func writeState(t *testing.T, dir string, outputs map[string][2]any) {
	t.Helper()
	outs := map[string]any{}
	for k, v := range outputs {
		outs[k] = map[string]any{"value": v[0], "type": v[1]}
	}
	b, _ := json.Marshal(map[string]any{"version": 4, "terraform_version": "1.5.0", "serial": 1,
		"lineage": "0d3e9f1c-7c4b-4d6e-9a51-" + fmt.Sprintf("%012d", len(dir)), "outputs": outs, "resources": []any{}})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "terraform.tfstate"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInfraOutputs: runway infra outputs reads, with the real terraform,
// the outputs of the roots of examples/saas's staging (states as terraform
// apply leaves them) and prints the file runway server --aws-outputs
// loads; an output missing from a root is named, and nothing is printed.
func TestInfraOutputs(t *testing.T) {
	if _, err := exec.LookPath("terraform"); err != nil {
		if _, err := exec.LookPath("tofu"); err != nil {
			t.Skip("neither terraform nor tofu is on PATH: .ci/run installs terraform")
		}
	}
	t.Setenv("TF_IN_AUTOMATION", "1")
	t.Setenv("CHECKPOINT_DISABLE", "1")
	out := t.TempDir()
	str := "string"
	writeState(t, filepath.Join(out, "bootstrap"), map[string][2]any{
		"account_ids":  {map[string]string{"staging": "111111111111", "production": "222222222222"}, []any{"map", "string"}},
		"state_bucket": {"saas-example-com-tfstate", str}})
	base := filepath.Join(out, "staging", "us-east-2")
	writeState(t, filepath.Join(base, "network"), map[string][2]any{
		"vpc_id":     {"vpc-0a1b2c", str},
		"subnet_ids": {map[string][]string{"private": {"subnet-p1", "subnet-p2"}, "public": {"subnet-u1", "subnet-u2"}}, []any{"object", map[string]any{"private": []any{"list", "string"}, "public": []any{"list", "string"}}}}})
	platform := map[string][2]any{"cluster_name": {"saas-staging", str},
		"https_listener_arn": {"arn:aws:elasticloadbalancing:us-east-2:111111111111:listener/app/saas-staging/1/2", str}}
	writeState(t, filepath.Join(base, "platform"), platform)
	for _, svc := range []string{"api", "web", "worker"} {
		secrets := map[string]string{}
		if svc != "web" {
			secrets["DATABASE_URL"] = "arn:aws:secretsmanager:us-east-2:111111111111:secret:saas/staging/" + svc + "/DATABASE_URL-AbCdEf"
		}
		writeState(t, filepath.Join(base, "services", svc), map[string][2]any{
			"repository_url":     {"111111111111.dkr.ecr.us-east-2.amazonaws.com/saas/" + svc, str},
			"security_group_id":  {"sg-" + svc, str},
			"execution_role_arn": {"arn:aws:iam::111111111111:role/staging-" + svc + "-execution", str},
			"task_role_arn":      {"arn:aws:iam::111111111111:role/staging-" + svc + "-task", str},
			"log_group_name":     {"/runway/staging/" + svc, str},
			"secret_arns":        {secrets, []any{"map", "string"}}})
	}

	stdout, stderr, code := run(t, "infra", "outputs", "--env", "staging", "--dir", saas, "--out", out)
	if code != 0 {
		t.Fatalf("runway infra outputs: exit %d\n%s", code, stderr)
	}
	file := filepath.Join(t.TempDir(), "aws-outputs.json")
	if err := os.WriteFile(file, []byte(stdout), 0o600); err != nil {
		t.Fatal(err)
	}
	envs, err := ecs.LoadEnvironments(file)
	if err != nil {
		t.Fatalf("the server refuses the printed file: %v\n%s", err, stdout)
	}
	e := envs["staging"]
	if len(envs) != 1 || e.Account != "111111111111" || e.Region != "us-east-2" || e.Domain != "example.com" || e.VpcID != "vpc-0a1b2c" ||
		strings.Join(e.SubnetIDs, ",") != "subnet-p1,subnet-p2" || e.Cluster != "saas-staging" || !strings.HasSuffix(e.ListenerARN, "/1/2") {
		t.Errorf("environment staging: %+v", e)
	}
	if api := e.Service("api"); api.SecurityGroupID != "sg-api" || api.LogGroup != "/runway/staging/api" ||
		!strings.HasSuffix(api.SecretARNs["DATABASE_URL"], "saas/staging/api/DATABASE_URL-AbCdEf") || !strings.HasSuffix(api.TaskRoleARN, "staging-api-task") {
		t.Errorf("service api: %+v", api)
	}
	if len(e.Services) != 3 {
		t.Errorf("services %v, want api, web and worker", e.Services)
	}

	delete(platform, "https_listener_arn")
	writeState(t, filepath.Join(base, "platform"), platform)
	stdout, stderr, code = run(t, "infra", "outputs", "--env", "staging", "--dir", saas, "--out", out)
	if code != 1 || stdout != "" || !strings.Contains(stderr, "root staging/us-east-2/platform has no output https_listener_arn") {
		t.Fatalf("a missing output: exit %d, stdout %q\n%s", code, stdout, stderr)
	}
}
