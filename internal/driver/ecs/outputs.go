package ecs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// LoadEnvironments reads the file `runway server --aws-outputs` names: by
// environment, the generated Terraform's outputs the driver needs (Env's
// JSON names are the outputs' names; docs/aws.md shows how to write it
// from `terraform output -json`). Every missing output is reported at once.
func LoadEnvironments(path string) (map[string]Env, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("aws outputs: %w", err)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var envs map[string]Env
	if err := d.Decode(&envs); err != nil {
		return nil, fmt.Errorf("aws outputs %s: %w (want {\"<environment>\": {\"region\": ..., \"cluster_name\": ..., ...}})", path, err)
	}
	var problems []string
	for name, e := range envs {
		for field, v := range map[string]string{"region": e.Region, "cluster_name": e.Cluster, "https_listener_arn": e.ListenerARN, "vpc_id": e.VpcID} {
			if v == "" {
				problems = append(problems, fmt.Sprintf("environment %s: %s is missing", name, field))
			}
		}
		services := []string{""}
		for s := range e.Services {
			services = append(services, s)
		}
		for _, s := range services {
			so := e.Service(s)
			if s == "" && len(e.Services) > 0 {
				continue // the defaults are optional when every service has its outputs
			}
			where := "services." + s
			if s == "" {
				where = "(the environment's defaults)"
			}
			for field, v := range map[string]string{"security_group_id": so.SecurityGroupID, "execution_role_arn": so.ExecutionRoleARN, "log_group_name": so.LogGroup} {
				if v == "" {
					problems = append(problems, fmt.Sprintf("environment %s: %s %s is missing", name, where, field))
				}
			}
		}
		if len(e.SubnetIDs) == 0 {
			problems = append(problems, fmt.Sprintf("environment %s: private_subnet_ids is missing", name))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, fmt.Errorf("aws outputs %s: %s (copy them from terraform output -json of the environment's network, platform and service roots)", path, strings.Join(problems, "; "))
	}
	return envs, nil
}
