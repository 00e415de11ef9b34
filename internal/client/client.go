// Package client is the typed Go client of Runway's server API; it is the
// CLI's only way to the server.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/api"
)

// Client talks to one Runway server.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// New returns a client for the server at baseURL (such as http://127.0.0.1:7040).
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q: want http(s)://host:port (set --server or RUNWAY_SERVER)", baseURL)
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: &http.Client{Timeout: 30 * time.Second}}, nil
}

// Error is a problem returned by the server.
type Error struct {
	api.Problem
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return e.Detail
	}
	return e.Title
}

// IsKind reports whether err is a server problem of the given kind (LockExists, ...).
func IsKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("reach Runway server at %s: %w (is `runway server` or `runway up` running? set --server)", c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("read response of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var p api.Problem
		if json.Unmarshal(data, &p) == nil && p.Status != 0 {
			return &Error{p}
		}
		return &Error{api.Problem{Status: resp.StatusCode, Title: resp.Status, Detail: fmt.Sprintf("%s %s: %s", method, path, strings.TrimSpace(string(data)))}}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode response of %s %s: %w", method, path, err)
	}
	return nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Health checks that the server answers.
func (c *Client) Health(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/v1/health", nil, nil)
}

// Deploy creates a release.
func (c *Client) Deploy(ctx context.Context, req api.DeployRequest) (*api.Release, error) {
	var out api.Release
	return &out, c.do(ctx, http.MethodPost, "/v1/releases", req, &out)
}

// Rollback creates a release from an earlier one.
func (c *Client) Rollback(ctx context.Context, req api.RollbackRequest) (*api.Release, error) {
	var out api.Release
	return &out, c.do(ctx, http.MethodPost, "/v1/rollbacks", req, &out)
}

// Halt asks a release to stop at its next step.
func (c *Client) Halt(ctx context.Context, id, reason string) error {
	return c.do(ctx, http.MethodPost, "/v1/releases/"+url.PathEscape(id)+"/halt", api.HaltRequest{Reason: reason}, nil)
}

// Release returns a release with its events.
func (c *Client) Release(ctx context.Context, id string) (*api.ReleaseDetail, error) {
	var out api.ReleaseDetail
	return &out, c.do(ctx, http.MethodGet, "/v1/releases/"+url.PathEscape(id), nil, &out)
}

// Releases lists releases, newest first.
func (c *Client) Releases(ctx context.Context, f api.ReleaseFilter) ([]*api.Release, error) {
	q := url.Values{}
	if f.Project != "" {
		q.Set("project", f.Project)
	}
	if f.Environment != "" {
		q.Set("environment", f.Environment)
	}
	if f.Service != "" {
		q.Set("service", f.Service)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []*api.Release
	return out, c.do(ctx, http.MethodGet, "/v1/releases?"+q.Encode(), nil, &out)
}

// Status returns what runs for a service in an environment of a project.
func (c *Client) Status(ctx context.Context, project, env, service string) (*api.ServiceStatus, error) {
	var out api.ServiceStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/environments/"+url.PathEscape(env)+"/services/"+url.PathEscape(service), nil, &out)
}

// Project returns a project as the server holds it.
func (c *Client) Project(ctx context.Context, name string) (*api.Project, error) {
	var out api.Project
	return &out, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(name), nil, &out)
}

// Projects lists the server's projects.
func (c *Client) Projects(ctx context.Context) ([]*api.Project, error) {
	var out []*api.Project
	return out, c.do(ctx, http.MethodGet, "/v1/projects", nil, &out)
}

// ApplyProject registers or updates a project's definition.
func (c *Client) ApplyProject(ctx context.Context, name string, req api.ApplyProjectRequest) (*api.Project, error) {
	var out api.Project
	return &out, c.do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(name), req, &out)
}
