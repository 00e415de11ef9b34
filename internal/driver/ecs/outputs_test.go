package ecs

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadEnvironments(t *testing.T) {
	dir := t.TempDir()
	write := func(s string) string {
		p := filepath.Join(dir, "aws.json")
		if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	envs, err := LoadEnvironments(write(`{"staging": {"region": "us-east-2", "cluster_name": "c", "https_listener_arn": "l", "vpc_id": "v",
		"private_subnet_ids": ["s"], "services": {"web": {"security_group_id": "sg", "execution_role_arn": "e", "task_role_arn": "t", "log_group_name": "/g"}}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := envs["staging"].Service("web"); got.SecurityGroupID != "sg" || got.LogGroup != "/g" {
		t.Errorf("service outputs %+v", got)
	}
	for _, c := range []struct{ in, want string }{
		{`{"staging": {"region": "us-east-2"}}`, "environment staging: cluster_name is missing"},
		{`{"staging": {"regoin": "x"}}`, `unknown field "regoin"`},
		{`{"staging": {"region": "r", "cluster_name": "c", "https_listener_arn": "l", "vpc_id": "v", "private_subnet_ids": ["s"], "services": {"web": {}}}}`,
			"services.web security_group_id is missing"},
	} {
		if _, err := LoadEnvironments(write(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.in, err, c.want)
		}
	}
}

// FuzzEnvFromOutputs: whatever a root's outputs hold, the mapping returns
// an environment or names what is wrong, never panics.
func FuzzEnvFromOutputs(f *testing.F) {
	f.Add([]byte(`{"staging":"111111111111"}`), []byte(`{"private":["s1"]}`), []byte(`"arn"`), []byte(`{"DATABASE_URL":"arn"}`))
	f.Add([]byte(`null`), []byte(`[]`), []byte(`1`), []byte(`null`))
	f.Fuzz(func(t *testing.T, accounts, subnets, arn, secrets []byte) {
		raw := func(b []byte) json.RawMessage {
			if !json.Valid(b) {
				return json.RawMessage(`null`)
			}
			return json.RawMessage(b)
		}
		o := RootOutputs{Bootstrap: map[string]json.RawMessage{"account_ids": raw(accounts)},
			Network:  map[string]json.RawMessage{"vpc_id": raw(arn), "subnet_ids": raw(subnets)},
			Platform: map[string]json.RawMessage{"cluster_name": raw(arn), "https_listener_arn": raw(arn)},
			Services: map[string]map[string]json.RawMessage{"web": {"security_group_id": raw(arn), "execution_role_arn": raw(arn),
				"task_role_arn": raw(arn), "log_group_name": raw(arn), "secret_arns": raw(secrets)}}}
		e, err := EnvFromOutputs("staging", "us-east-2", "example.com", o)
		if err == nil && (e.Account == "" || e.Region != "us-east-2") {
			t.Fatalf("no error, but %+v", e)
		}
	})
}
