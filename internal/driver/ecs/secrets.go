package ecs

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
)

// Secret is one version of a secret that Runway's store holds, as the aws
// target delivers it: written into the Secrets Manager container the
// generated Terraform made for the key (the service root's secret_arns),
// as the version named VersionID; a task definition then names that
// version, so a task started later (a replacement, a rollback) reads the
// value the release pinned, whatever was put since.
type Secret struct {
	Name    string // the variable the release's processes read it as
	Key     string
	Service string // "" for an environment-wide secret
	Version int
	// VersionID is secrets.ExternalVersionID of the version: Secrets
	// Manager's VersionId (PutSecretValue's ClientRequestToken).
	VersionID string
	Value     []byte
}

// valueFrom is how a container definition names one version of a secret:
// ARN:json-key:version-stage:version-id, empty json key and stage (the whole
// value of exactly that version).
func valueFrom(arn, versionID string) string { return arn + ":::" + versionID }

// putSecret writes one version into a container. PutSecretValue with a
// ClientRequestToken seen before and the same value changes nothing, so
// this runs again safely (after a crash, for every group of a release);
// the new version takes the AWSCURRENT label unless it exists already.
// Errors name the secret and container, never the value.
func (c *clients) putSecret(ctx context.Context, arn string, s Secret) error {
	_, err := c.sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(arn),
		ClientRequestToken: aws.String(s.VersionID), SecretString: aws.String(string(s.Value))})
	if err != nil {
		return fmt.Errorf("write secret %s v%d into Secrets Manager %s: %s (the server's AWS credentials need secretsmanager:PutSecretValue on it)", s.Key, s.Version, arn, apiMessage(err))
	}
	return nil
}

// apiMessage is an SDK error's code and message: the SDK's own text also
// carries the request, and nothing of a request is printed here.
func apiMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

// PutSecret writes a version Runway's store just made into the Secrets
// Manager containers of environment env that deliver it: the service's own
// container of the key for a service's secret; for an environment-wide one,
// every service's container of the key but those of services in shadowed
// (they have a value of their own). It returns how many containers it
// wrote. A release's groups write their pinned versions again before they
// start (EnsureGroup, RunTask), so a write that failed here is repaired by
// the next deploy.
func (d *Driver) PutSecret(ctx context.Context, env string, s Secret, shadowed map[string]bool) (int, error) {
	c, err := d.clients(ctx, env)
	if err != nil {
		return 0, err
	}
	arns := map[string]bool{}
	if s.Service != "" {
		if arn := c.env.Service(s.Service).SecretARNs[s.Key]; arn != "" {
			arns[arn] = true
		}
	} else {
		if arn := c.env.SecretARNs[s.Key]; arn != "" {
			arns[arn] = true
		}
		for name := range c.env.Services {
			if arn := c.env.Service(name).SecretARNs[s.Key]; arn != "" && !shadowed[name] {
				arns[arn] = true
			}
		}
	}
	list := make([]string, 0, len(arns))
	for arn := range arns {
		list = append(list, arn)
	}
	sort.Strings(list)
	for _, arn := range list {
		if err := c.putSecret(ctx, arn, s); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// HasEnvironment reports whether the driver has Terraform outputs of env.
func (d *Driver) HasEnvironment(env string) bool {
	_, ok := d.opt.Environments[env]
	return ok
}

// releaseSecrets writes the versions a release pins into the service's
// containers and returns the task definition's references, by variable.
func (d *Driver) releaseSecrets(ctx context.Context, c *clients, service, release string, vars map[string]string) (map[string]string, error) {
	if len(vars) == 0 {
		return nil, nil
	}
	if d.opt.Secrets == nil {
		return nil, fmt.Errorf("release %s names secrets and this server delivers none to target aws", release)
	}
	pinned, err := d.opt.Secrets(ctx, release)
	if err != nil {
		return nil, fmt.Errorf("secrets of release %s: %w", release, err)
	}
	so := c.env.Service(service)
	out := make(map[string]string, len(vars))
	written := map[string]bool{}
	for _, s := range pinned {
		if _, ok := vars[s.Name]; !ok {
			continue
		}
		arn := so.SecretARNs[s.Key]
		if arn == "" {
			return nil, fmt.Errorf("secret %s (variable %s) has no Secrets Manager container in the environment's Terraform outputs: add it to the manifest and run runway infra apply", s.Key, s.Name)
		}
		if !written[arn+"\x00"+s.VersionID] {
			if err := c.putSecret(ctx, arn, s); err != nil {
				return nil, err
			}
			written[arn+"\x00"+s.VersionID] = true
		}
		out[s.Name] = valueFrom(arn, s.VersionID)
	}
	for v := range vars {
		if out[v] == "" {
			return nil, fmt.Errorf("release %s pins no version of secret %s (variable %s)", release, vars[v], v)
		}
	}
	return out, nil
}
