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
	if err := CheckEnvironments(envs); err != nil {
		return nil, fmt.Errorf("aws outputs %s: %w", path, err)
	}
	return envs, nil
}

// CheckEnvironments reports every output the driver needs that envs lack,
// at once.
func CheckEnvironments(envs map[string]Env) error {
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
		return fmt.Errorf("%s (runway infra outputs writes them from the environment's network, platform and service roots once runway infra apply made them)", strings.Join(problems, "; "))
	}
	return nil
}

// RootOutputs are the outputs (`terraform output -json`, values only) of
// one environment's generated roots, as runway infra apply made them.
type RootOutputs struct {
	Bootstrap, Network, Platform map[string]json.RawMessage
	// Services are the service roots' outputs, by service name.
	Services map[string]map[string]json.RawMessage
}

// EnvFromOutputs is what the driver reads of environment env (region and
// domain from runway.hcl) from its roots' outputs: the account from the
// bootstrap root's account_ids, the VPC and private subnets from the network
// root, the cluster and HTTPS listener from the platform root, and each
// service root's roles, security group, log group and secret containers.
// An output missing or of another type is reported, all at once.
func EnvFromOutputs(env, region, domain string, o RootOutputs) (Env, error) {
	e := Env{Region: region, Domain: domain, Services: map[string]ServiceOutputs{}}
	var problems []string
	read := func(root string, outs map[string]json.RawMessage, name string, into any) {
		raw, ok := outs[name]
		if !ok || string(raw) == "null" {
			problems = append(problems, fmt.Sprintf("root %s has no output %s", root, name))
			return
		}
		if err := json.Unmarshal(raw, into); err != nil {
			problems = append(problems, fmt.Sprintf("root %s: output %s: %v", root, name, err))
		}
	}
	var accounts map[string]string
	read("bootstrap", o.Bootstrap, "account_ids", &accounts)
	if accounts != nil {
		if e.Account = accounts[env]; e.Account == "" {
			problems = append(problems, fmt.Sprintf("root bootstrap: output account_ids has no account of environment %s", env))
		}
	}
	base := env + "/" + region
	read(base+"/network", o.Network, "vpc_id", &e.VpcID)
	var subnets struct {
		Private []string `json:"private"`
	}
	read(base+"/network", o.Network, "subnet_ids", &subnets)
	e.SubnetIDs = subnets.Private
	read(base+"/platform", o.Platform, "cluster_name", &e.Cluster)
	read(base+"/platform", o.Platform, "https_listener_arn", &e.ListenerARN)
	for name, outs := range o.Services {
		var so ServiceOutputs
		root := base + "/services/" + name
		read(root, outs, "security_group_id", &so.SecurityGroupID)
		read(root, outs, "execution_role_arn", &so.ExecutionRoleARN)
		read(root, outs, "task_role_arn", &so.TaskRoleARN)
		read(root, outs, "log_group_name", &so.LogGroup)
		if raw, ok := outs["secret_arns"]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &so.SecretARNs); err != nil {
				problems = append(problems, fmt.Sprintf("root %s: output secret_arns: %v", root, err))
			}
		}
		e.Services[name] = so
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return Env{}, fmt.Errorf("environment %s: %s (run runway infra apply --env %s)", env, strings.Join(problems, "; "), env)
	}
	return e, nil
}
