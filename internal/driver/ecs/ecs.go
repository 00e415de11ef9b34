// Package ecs is the aws target (target.Target): a group is an ECS service
// on Fargate with its own target group, both named after the group
// (strategy.GroupName within the 32 characters of a target group name);
// the service's host rule on the environment's HTTPS listener forwards to
// its groups by weight; health is the target groups' target health and
// the ECS deployment's failed tasks; tasks are ECS RunTask calls with the
// release's task definition, re-attached by a deterministic startedBy;
// logs are CloudWatch Logs; window statistics are CloudWatch's
// AWS/ApplicationELB figures per target group.
//
// Everything static comes from the generated Terraform (internal/iac), read
// from its outputs (Env, docs/aws.md): the cluster, the listener, the VPC,
// subnets and security group of tasks, the task execution and task roles,
// the log group and the Secrets Manager containers. The driver owns what is
// per release: target groups, listener rules, task definitions, ECS
// services, and the Secrets Manager versions of the secrets it pins
// (secrets.go: written with a version id derived from Runway's version, and
// named by that id in the task definition).
//
// Credentials are the SDK's own (profile, SSO, environment, role): the
// driver loads the default configuration for each environment's region.
package ecs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/target"
)

// Env is what the driver reads of one environment's generated Terraform
// outputs (platform, network and service roots; docs/aws.md lists them).
type Env struct {
	Region  string `json:"region"`
	Account string `json:"account_id"`
	Domain  string `json:"domain"`
	// platform root
	Cluster     string `json:"cluster_name"`
	ListenerARN string `json:"https_listener_arn"`
	// network root
	VpcID     string   `json:"vpc_id"`
	SubnetIDs []string `json:"private_subnet_ids"`
	// Services are the outputs of each service root, by service name.
	Services map[string]ServiceOutputs `json:"services,omitempty"`
	// The environment's defaults, for a service without outputs of its own
	// (the same names as a service root's outputs).
	ServiceOutputs
}

// ServiceOutputs are what the driver reads of a service root's outputs.
type ServiceOutputs struct {
	SecurityGroupID  string            `json:"security_group_id,omitempty"`
	ExecutionRoleARN string            `json:"execution_role_arn,omitempty"`
	TaskRoleARN      string            `json:"task_role_arn,omitempty"`
	LogGroup         string            `json:"log_group_name,omitempty"`
	SecretARNs       map[string]string `json:"secret_arns,omitempty"`
}

// Service returns the outputs of service's root, each missing one taken
// from the environment's defaults.
func (e Env) Service(name string) ServiceOutputs {
	s := e.Services[name]
	or := func(v, d string) string {
		if v == "" {
			return d
		}
		return v
	}
	s.SecurityGroupID = or(s.SecurityGroupID, e.SecurityGroupID)
	s.ExecutionRoleARN = or(s.ExecutionRoleARN, e.ExecutionRoleARN)
	s.TaskRoleARN = or(s.TaskRoleARN, e.TaskRoleARN)
	s.LogGroup = or(s.LogGroup, e.LogGroup)
	if s.SecretARNs == nil {
		s.SecretARNs = e.SecretARNs
	}
	return s
}

// Options configure the driver.
type Options struct {
	// Environments by name.
	Environments map[string]Env
	// AWSConfig returns the SDK configuration of an environment; nil loads
	// the SDK's default chain for its region.
	AWSConfig func(ctx context.Context, env string, e Env) (aws.Config, error)
	// Secrets returns the secret versions a release pins, with their values
	// (the server's secret store); the driver writes them into Secrets
	// Manager before a task definition names them. Nil: releases that name
	// secrets are refused.
	Secrets func(ctx context.Context, release string) ([]Secret, error)
	// Poll is how often waits poll AWS (default 2 s; tests shorten it).
	Poll time.Duration
	Log  *slog.Logger
}

// Driver implements target.Target for target aws.
type Driver struct {
	opt Options
	mu  sync.Mutex
	cl  map[string]*clients
	// started remembers the tasks this process started, so a task is
	// observed through its ARN while ListTasks does not show it yet
	// (eventual consistency).
	started map[string]string
	// halted are the tasks this process stopped (StopTask), forgotten
	// also while Describe calls do not show their stop yet.
	halted map[string]bool
	locks  target.TaskLocks
}

type clients struct {
	env  Env
	ecs  *ecs.Client
	elb  *elb.Client
	cw   *cloudwatch.Client
	logs *cloudwatchlogs.Client
	sts  *sts.Client
	sm   *secretsmanager.Client
}

var _ target.Target = (*Driver)(nil)

// New returns the aws driver.
func New(opt Options) *Driver {
	if opt.Poll <= 0 {
		opt.Poll = 2 * time.Second
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Driver{opt: opt, cl: map[string]*clients{}, started: map[string]string{}, halted: map[string]bool{}}
}

// Capabilities of an application load balancer in front of ECS services:
// a forward action carries at most 5 target groups with weights 0 to 999;
// CloudWatch's load balancer figures have a one-minute resolution; a
// target group's name has at most 32 characters; tasks re-attach by their
// startedBy; the preview host has a rule of its own. The drain of a group is
// its target group's deregistration delay, fixed when the group is created
// from the release's deploy.drain_timeout.
func Capabilities() target.Capabilities {
	return target.Capabilities{MaxWeight: 999, MaxWeightedGroups: 5, StatsWindowMin: time.Minute, StatsWindowMax: 3 * time.Hour,
		Preview: true, TaskReattach: true, GroupNameMax: 32}
}

// Capabilities implements target.Target.
func (d *Driver) Capabilities() target.Capabilities { return Capabilities() }

func (d *Driver) clients(ctx context.Context, env string) (*clients, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c := d.cl[env]; c != nil {
		return c, nil
	}
	e, ok := d.opt.Environments[env]
	if !ok {
		return nil, fmt.Errorf("environment %s: no Terraform outputs of it are configured for the aws target (run runway infra apply, then restart the server)", env)
	}
	var cfg aws.Config
	var err error
	if d.opt.AWSConfig != nil {
		cfg, err = d.opt.AWSConfig(ctx, env, e)
	} else {
		cfg, err = awsconfig.LoadDefaultConfig(ctx, awsconfig.WithRegion(e.Region))
	}
	if err != nil {
		return nil, fmt.Errorf("aws configuration of environment %s: %w", env, err)
	}
	c := &clients{env: e, ecs: ecs.NewFromConfig(cfg), elb: elb.NewFromConfig(cfg), cw: cloudwatch.NewFromConfig(cfg),
		logs: cloudwatchlogs.NewFromConfig(cfg), sts: sts.NewFromConfig(cfg), sm: secretsmanager.NewFromConfig(cfg)}
	d.cl[env] = c
	return c, nil
}

// Validate checks the release against what the aws target runs: an image
// pinned by digest (runway build pushes it to ECR and pins it), a Secrets
// Manager ARN for every secret, and credentials of the environment's
// account.
func (d *Driver) Validate(ctx context.Context, ref target.ServiceRef, spec *config.Service) error {
	var problems []string
	c, err := d.clients(ctx, ref.Environment)
	if err != nil {
		return err
	}
	if _, _, digest := config.SplitImage(spec.Image); spec.Image == "" || digest == "" {
		problems = append(problems, fmt.Sprintf("target aws runs images pinned by digest: build and push it (runway build %s --env %s), the release then pins its digest", ref.Service, ref.Environment))
	}
	if len(spec.SecretVars()) > 0 && d.opt.Secrets == nil {
		problems = append(problems, "the release names secrets and this server delivers none to target aws")
	}
	for v, key := range spec.SecretVars() {
		if c.env.Service(ref.Service).SecretARNs[key] == "" {
			problems = append(problems, fmt.Sprintf("secret %s (variable %s) has no Secrets Manager container in the environment's Terraform outputs: add it to the manifest and run runway infra apply", key, v))
		}
	}
	id, err := c.sts.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	switch {
	case err != nil:
		problems = append(problems, fmt.Sprintf("aws credentials of environment %s: %v", ref.Environment, err))
	case c.env.Account != "" && aws.ToString(id.Account) != c.env.Account:
		problems = append(problems, fmt.Sprintf("the aws credentials are of account %s, environment %s is account %s: use its profile or role", aws.ToString(id.Account), ref.Environment, c.env.Account))
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// host is the service's host, as its listener rule matches it.
func (c *clients) host(ref target.ServiceRef) string {
	return naming.Service(ref.Service, ref.Environment, c.env.Domain)
}

// groupHost is the host of one group's own rule: a target group must be
// forwarded to by a rule of the load balancer before an ECS service may
// use it, and a group's weight in the service's rule may be 0.
func (c *clients) groupHost(ref target.ServiceRef, group string) string {
	return group + "." + c.host(ref)
}

// token is a deterministic identifier of what (64 hex characters at most
// n): client tokens and startedBy.
func token(n int, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:])[:n]
}

// priority is where a host's rule starts looking for a free listener
// priority: derived from the host so that it is stable; the generated
// Terraform's rules (none per service now) use 1-999.
func priority(host string, try int) int32 {
	h := fnv.New32a()
	h.Write([]byte(host))
	return int32(1000 + (int(h.Sum32())+try)%49000)
}

func drainSeconds(spec *config.Service) int32 {
	if spec == nil {
		return 300
	}
	return int32(min(3600, max(0, int(math.Ceil(spec.Deploy.DrainTimeout.Seconds())))))
}

// wait polls cond every Poll until it holds, ctx ends or limit passes.
func (d *Driver) wait(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok || time.Now().After(deadline) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d.opt.Poll):
		}
	}
}
