package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"

	"github.com/runwayhq/runway/internal/apiwire"
)

// secretsPath is /v1/projects/P/environments/E/secrets, then rest.
func secretsPath(project, env string, rest ...string) string {
	p := "/v1/projects/" + url.PathEscape(project) + "/environments/" + url.PathEscape(env) + "/secrets"
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

func serviceQuery(service string, version int) string {
	q := url.Values{}
	if service != "" {
		q.Set("service", service)
	}
	if version > 0 {
		q.Set("version", strconv.Itoa(version))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// PutSecrets stores a new version of each value (all or none).
func (c *Client) PutSecrets(ctx context.Context, project, env string, req apiwire.SecretPutRequest) ([]apiwire.SecretVersion, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	if req.Salt == "" {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		req.Salt = hex.EncodeToString(b)
	}
	var out []apiwire.SecretVersion
	return out, c.do(ctx, http.MethodPut, secretsPath(project, env), req, &out)
}

// Secrets lists an environment's secrets (only service's and the
// environment-wide ones when service is set), never values.
func (c *Client) Secrets(ctx context.Context, project, env, service string) ([]apiwire.SecretInfo, error) {
	var out []apiwire.SecretInfo
	return out, c.do(ctx, http.MethodGet, secretsPath(project, env)+serviceQuery(service, 0), nil, &out)
}

// SecretValue reads a secret's value (version 0: the current one); the
// server audits the read.
func (c *Client) SecretValue(ctx context.Context, project, env, service, key string, version int) (*apiwire.SecretValue, error) {
	var out apiwire.SecretValue
	return &out, c.do(ctx, http.MethodGet, secretsPath(project, env, key)+serviceQuery(service, version), nil, &out)
}

// SecretHistory lists a secret's versions, newest first.
func (c *Client) SecretHistory(ctx context.Context, project, env, service, key string) ([]apiwire.SecretVersion, error) {
	var out []apiwire.SecretVersion
	return out, c.do(ctx, http.MethodGet, secretsPath(project, env, key, "history")+serviceQuery(service, 0), nil, &out)
}

// RollbackSecret makes a new version of a secret with an older version's value.
func (c *Client) RollbackSecret(ctx context.Context, project, env, key string, req apiwire.SecretRollbackRequest) (*apiwire.SecretVersion, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.SecretVersion
	return &out, c.do(ctx, http.MethodPost, secretsPath(project, env, key, "rollback"), req, &out)
}

// DeleteSecret removes a secret and its versions.
func (c *Client) DeleteSecret(ctx context.Context, project, env, key string, req apiwire.SecretDeleteRequest) (*apiwire.SecretDeleted, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.SecretDeleted
	return &out, c.do(ctx, http.MethodPost, secretsPath(project, env, key, "delete"), req, &out)
}

// RotateMasterKey re-wraps every data key under a new master key.
func (c *Client) RotateMasterKey(ctx context.Context) (*apiwire.MasterKeyRotated, error) {
	var req apiwire.RotateMasterKeyRequest
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.MasterKeyRotated
	return &out, c.do(ctx, http.MethodPost, "/v1/secrets/rotate-master-key", req, &out)
}
