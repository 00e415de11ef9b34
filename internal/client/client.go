// Package client is the typed Go client of Runway's server API; it is the
// CLI's only way to the server.
package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/runwayhq/runway/internal/apiwire"
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

// NewWithHTTP is New with the HTTP client to use (such as one trusting a
// local CA).
func NewWithHTTP(baseURL, token string, hc *http.Client) (*Client, error) {
	c, err := New(baseURL, token)
	if err != nil {
		return nil, err
	}
	c.http = hc
	return c, nil
}

// Error is a problem returned by the server.
type Error struct {
	apiwire.Problem
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

// maxErrorBody is how much of a response that is not a problem an error quotes.
const maxErrorBody = 512

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	var raw []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		raw, body = b, bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(apiwire.DigestHeader, apiwire.ContentDigest(raw))
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
		var p apiwire.Problem
		if json.Unmarshal(data, &p) == nil && p.Status != 0 {
			return &Error{p}
		}
		// Not a problem: something between client and server answered
		// (a proxy's error page). Its start says what; the rest is noise.
		text := strings.TrimSpace(string(data))
		if len(text) > maxErrorBody {
			text = text[:maxErrorBody] + "..."
		}
		return &Error{apiwire.Problem{Status: resp.StatusCode, Title: resp.Status, Detail: fmt.Sprintf("%s %s: %s %s", method, path, resp.Status, text)}}
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
func (c *Client) Deploy(ctx context.Context, req apiwire.DeployRequest) (*apiwire.Release, error) {
	var out apiwire.Release
	return &out, c.do(ctx, http.MethodPost, "/v1/releases", req, &out)
}

// Rollback creates a release from an earlier one.
func (c *Client) Rollback(ctx context.Context, req apiwire.RollbackRequest) (*apiwire.Release, error) {
	var out apiwire.Release
	return &out, c.do(ctx, http.MethodPost, "/v1/rollbacks", req, &out)
}

// Halt asks a release to stop at its next step.
func (c *Client) Halt(ctx context.Context, id, reason string) error {
	req := apiwire.HaltRequest{Reason: reason}
	stamp(&req.RequestID, &req.RequestedAt)
	return c.do(ctx, http.MethodPost, "/v1/releases/"+url.PathEscape(id)+"/halt", req, nil)
}

// stamp gives a request its id and time unless the caller chose them.
func stamp(id *string, at *time.Time) {
	if *id == "" {
		*id = NewRequestID()
	}
	if at.IsZero() {
		*at = time.Now().UTC()
	}
}

// NewRequestID is a new request id (a ULID).
func NewRequestID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }

// Whoami returns the caller as the server sees it.
func (c *Client) Whoami(ctx context.Context) (*apiwire.Whoami, error) {
	var out apiwire.Whoami
	return &out, c.do(ctx, http.MethodGet, "/v1/whoami", nil, &out)
}

// CreateUser makes a user and its first token.
func (c *Client) CreateUser(ctx context.Context, req apiwire.CreateUserRequest) (*apiwire.UserCreated, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.UserCreated
	return &out, c.do(ctx, http.MethodPost, "/v1/users", req, &out)
}

// Users lists the users.
func (c *Client) Users(ctx context.Context) ([]*apiwire.User, error) {
	var out []*apiwire.User
	return out, c.do(ctx, http.MethodGet, "/v1/users", nil, &out)
}

// User returns one user with its tokens.
func (c *Client) User(ctx context.Context, name string) (*apiwire.User, error) {
	var out apiwire.User
	return &out, c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(name), nil, &out)
}

// UpdateUser changes a user's roles or disables it.
func (c *Client) UpdateUser(ctx context.Context, name string, req apiwire.UpdateUserRequest) (*apiwire.User, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.User
	return &out, c.do(ctx, http.MethodPatch, "/v1/users/"+url.PathEscape(name), req, &out)
}

// CreateToken makes a token.
func (c *Client) CreateToken(ctx context.Context, req apiwire.CreateTokenRequest) (*apiwire.TokenCreated, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.TokenCreated
	return &out, c.do(ctx, http.MethodPost, "/v1/tokens", req, &out)
}

// Tokens lists the caller's tokens, or user's ("*": everyone's).
func (c *Client) Tokens(ctx context.Context, user string) ([]*apiwire.Token, error) {
	q := ""
	if user != "" {
		q = "?user=" + url.QueryEscape(user)
	}
	var out []*apiwire.Token
	return out, c.do(ctx, http.MethodGet, "/v1/tokens"+q, nil, &out)
}

// RevokeToken revokes a token by id.
func (c *Client) RevokeToken(ctx context.Context, id string) (*apiwire.Token, error) {
	var req apiwire.RevokeTokenRequest
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.Token
	return &out, c.do(ctx, http.MethodPost, "/v1/tokens/"+url.PathEscape(id)+"/revoke", req, &out)
}

// Audit lists audit entries.
func (c *Client) Audit(ctx context.Context, f apiwire.AuditFilter) ([]*apiwire.AuditEntry, error) {
	q := url.Values{}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if f.Actor != "" {
		q.Set("actor", f.Actor)
	}
	if f.Environment != "" {
		q.Set("environment", f.Environment)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out []*apiwire.AuditEntry
	return out, c.do(ctx, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &out)
}

// VerifyAudit has the server recompute its audit chain.
func (c *Client) VerifyAudit(ctx context.Context) (*apiwire.AuditReport, error) {
	var out apiwire.AuditReport
	return &out, c.do(ctx, http.MethodGet, "/v1/audit/verify", nil, &out)
}

// Release returns a release with its events.
func (c *Client) Release(ctx context.Context, id string) (*apiwire.ReleaseDetail, error) {
	var out apiwire.ReleaseDetail
	return &out, c.do(ctx, http.MethodGet, "/v1/releases/"+url.PathEscape(id), nil, &out)
}

// Releases lists releases, newest first.
func (c *Client) Releases(ctx context.Context, f apiwire.ReleaseFilter) ([]*apiwire.Release, error) {
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
	var out []*apiwire.Release
	return out, c.do(ctx, http.MethodGet, "/v1/releases?"+q.Encode(), nil, &out)
}

// Status returns what runs for a service in an environment of a project.
func (c *Client) Status(ctx context.Context, project, env, service string) (*apiwire.ServiceStatus, error) {
	var out apiwire.ServiceStatus
	return &out, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/environments/"+url.PathEscape(env)+"/services/"+url.PathEscape(service), nil, &out)
}

// Project returns a project as the server holds it.
func (c *Client) Project(ctx context.Context, name string) (*apiwire.Project, error) {
	var out apiwire.Project
	return &out, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(name), nil, &out)
}

// Projects lists the server's projects.
func (c *Client) Projects(ctx context.Context) ([]*apiwire.Project, error) {
	var out []*apiwire.Project
	return out, c.do(ctx, http.MethodGet, "/v1/projects", nil, &out)
}

// ApplyProject registers or updates a project's definition.
func (c *Client) ApplyProject(ctx context.Context, name string, req apiwire.ApplyProjectRequest) (*apiwire.Project, error) {
	var out apiwire.Project
	return &out, c.do(ctx, http.MethodPut, "/v1/projects/"+url.PathEscape(name), req, &out)
}

// Maintenance turns a service's maintenance page on (message, or the
// target's default text) or off.
func (c *Client) Maintenance(ctx context.Context, project, env, service string, req apiwire.MaintenanceRequest) (*apiwire.Maintenance, error) {
	stamp(&req.RequestID, &req.RequestedAt)
	var out apiwire.Maintenance
	return &out, c.do(ctx, http.MethodPost, "/v1/projects/"+url.PathEscape(project)+"/environments/"+url.PathEscape(env)+"/services/"+url.PathEscape(service)+"/maintenance", req, &out)
}
