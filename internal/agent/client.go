package agent

import (
	"bufio"
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

	"github.com/runwayhq/runway/internal/supervisor"
)

// Client is the typed client of the agent API.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
}

// NewClient returns a client of the agent at baseURL (http://127.0.0.1:7041).
func NewClient(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{}}
}

// APIError is a problem returned by the agent.
type APIError struct {
	Problem
}

func (e *APIError) Error() string {
	if e.Field != "" && !strings.HasPrefix(e.Detail, e.Field) {
		return fmt.Sprintf("agent: %s (%d): %s: %s", e.Title, e.Status, e.Field, e.Detail)
	}
	return fmt.Sprintf("agent: %s (%d): %s", e.Title, e.Status, e.Detail)
}

func (c *Client) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, fmt.Errorf("agent at %s: %w (is `runway agent` running?)", c.BaseURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp.StatusCode, decodeProblem(resp)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			return resp.StatusCode, fmt.Errorf("decode agent response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

func decodeProblem(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var p Problem
	if json.Unmarshal(b, &p) != nil || p.Status == 0 {
		p = Problem{Status: resp.StatusCode, Title: http.StatusText(resp.StatusCode), Detail: strings.TrimSpace(string(b))}
	}
	return &APIError{p}
}

// Health returns the agent's health (no token needed).
func (c *Client) Health(ctx context.Context) (Health, error) {
	var h Health
	_, err := c.do(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}

// CreateGroup creates a group (idempotent by name); created is false when
// the same group existed.
func (c *Client) CreateGroup(ctx context.Context, spec supervisor.GroupSpec) (supervisor.GroupStatus, bool, error) {
	var st supervisor.GroupStatus
	code, err := c.do(ctx, http.MethodPost, "/v1/groups", spec, &st)
	return st, code == http.StatusCreated, err
}

// Groups lists the groups.
func (c *Client) Groups(ctx context.Context) ([]supervisor.GroupStatus, error) {
	var out []supervisor.GroupStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/groups", nil, &out)
	return out, err
}

// Group returns one group.
func (c *Client) Group(ctx context.Context, name string) (supervisor.GroupStatus, error) {
	var st supervisor.GroupStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/groups/"+url.PathEscape(name), nil, &st)
	return st, err
}

// ScaleGroup sets the instance count of a group; it returns once stopped
// instances are gone (new instances may still be starting). Instances a
// scale down stops are drained for at most drain (0: the agent's default).
func (c *Client) ScaleGroup(ctx context.Context, name string, n int, drain time.Duration) (supervisor.GroupStatus, error) {
	var st supervisor.GroupStatus
	req := ScaleRequest{Instances: &n}
	if drain > 0 {
		req.DrainTimeout = drain.String()
	}
	_, err := c.do(ctx, http.MethodPut, "/v1/groups/"+url.PathEscape(name)+"/scale", req, &st)
	return st, err
}

// DeleteGroup deletes a group after draining it for at most drain (0: the
// agent's default); with wait it returns once the group is gone.
func (c *Client) DeleteGroup(ctx context.Context, name string, wait bool, drain time.Duration) error {
	q := url.Values{}
	if wait {
		q.Set("wait", "true")
	}
	if drain > 0 {
		q.Set("drain_timeout", drain.String())
	}
	p := "/v1/groups/" + url.PathEscape(name)
	if len(q) > 0 {
		p += "?" + q.Encode()
	}
	_, err := c.do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// Targets returns the routable instances of every group.
func (c *Client) Targets(ctx context.Context) ([]supervisor.GroupTargets, error) {
	var out []supervisor.GroupTargets
	_, err := c.do(ctx, http.MethodGet, "/v1/targets", nil, &out)
	return out, err
}

// Routes lists the routes.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out []Route
	_, err := c.do(ctx, http.MethodGet, "/v1/routes", nil, &out)
	return out, err
}

// PutRoute sets the route of one service in one environment.
func (c *Client) PutRoute(ctx context.Context, r Route) (Route, error) {
	var out Route
	_, err := c.do(ctx, http.MethodPut, "/v1/routes/"+url.PathEscape(r.Environment)+"/"+url.PathEscape(r.Service), r, &out)
	return out, err
}

// Route returns the route of one service in one environment.
func (c *Client) Route(ctx context.Context, env, service string) (Route, error) {
	var out Route
	_, err := c.do(ctx, http.MethodGet, "/v1/routes/"+url.PathEscape(env)+"/"+url.PathEscape(service), nil, &out)
	return out, err
}

// IsNotFound reports whether err is the agent's 404.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// DeleteRoute removes a route.
func (c *Client) DeleteRoute(ctx context.Context, env, service string) error {
	_, err := c.do(ctx, http.MethodDelete, "/v1/routes/"+url.PathEscape(env)+"/"+url.PathEscape(service), nil, nil)
	return err
}

// Logs streams the log lines of an instance matching q to emit.
func (c *Client) Logs(ctx context.Context, group, id string, q supervisor.LogQuery, emit func(supervisor.LogLine) error) error {
	v := url.Values{"format": {"json"}}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	if q.Filter != "" {
		v.Set("filter", q.Filter)
	}
	if q.Stream != "" {
		v.Set("stream", q.Stream)
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet,
		c.BaseURL+"/v1/groups/"+url.PathEscape(group)+"/instances/"+url.PathEscape(id)+"/logs?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return decodeProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l supervisor.LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("decode log line: %w", err)
		}
		if err := emit(l); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}

// LogGroups lists the groups whose logs the agent keeps, live and deleted,
// newest first, of one environment and service ("" for all).
func (c *Client) LogGroups(ctx context.Context, environment, service string) ([]supervisor.LogGroup, error) {
	v := url.Values{}
	if environment != "" {
		v.Set("environment", environment)
	}
	if service != "" {
		v.Set("service", service)
	}
	p := "/v1/logs"
	if len(v) > 0 {
		p += "?" + v.Encode()
	}
	var out []supervisor.LogGroup
	_, err := c.do(ctx, http.MethodGet, p, nil, &out)
	return out, err
}

// Instance returns one instance of a group.
func (c *Client) Instance(ctx context.Context, group, id string) (supervisor.InstanceStatus, error) {
	var st supervisor.InstanceStatus
	_, err := c.do(ctx, http.MethodGet, "/v1/groups/"+url.PathEscape(group)+"/instances/"+url.PathEscape(id), nil, &st)
	return st, err
}

// Stats returns the proxy's statistics per group of a service over the last window.
func (c *Client) Stats(ctx context.Context, env, service string, window time.Duration) (map[string]WindowStats, error) {
	var out map[string]WindowStats
	_, err := c.do(ctx, http.MethodGet, "/v1/stats/"+url.PathEscape(env)+"/"+url.PathEscape(service)+"?window="+url.QueryEscape(window.String()), nil, &out)
	return out, err
}

// Counters returns a service's served and failed request totals.
func (c *Client) Counters(ctx context.Context, env, service string) (Counters, error) {
	var out Counters
	_, err := c.do(ctx, http.MethodGet, "/v1/counters/"+url.PathEscape(env)+"/"+url.PathEscape(service), nil, &out)
	return out, err
}

// SetMaintenance turns a service's maintenance page on with message, or off when message is "".
func (c *Client) SetMaintenance(ctx context.Context, env, service, message string) error {
	path := "/v1/maintenance/" + url.PathEscape(env) + "/" + url.PathEscape(service)
	if message == "" {
		_, err := c.do(ctx, http.MethodDelete, path, nil, nil)
		return err
	}
	_, err := c.do(ctx, http.MethodPut, path, map[string]string{"message": message}, nil)
	return err
}
