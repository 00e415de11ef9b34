package ecs

import (
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
