package agentapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// DefaultCallTimeout bounds an agent call that does not wait for anything:
// the agent answers those in milliseconds, so a call still unanswered after
// it means the agent is stopped (SIGSTOP), wedged or gone.
const DefaultCallTimeout = 10 * time.Second

// Client is the typed client of the agent API.
type Client struct {
	BaseURL string
	Token   string
	HTTP    *http.Client
	// Timeout bounds every call (DefaultCallTimeout when 0); WithWait
	// extends it for calls that wait, such as a scale that drains.
	Timeout time.Duration
}

// NewClient returns a client of the agent at baseURL (http://127.0.0.1:7041)
// whose calls time out after DefaultCallTimeout.
func NewClient(baseURL, token string) *Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 16, IdleConnTimeout: 90 * time.Second}
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Transport: tr}, Timeout: DefaultCallTimeout}
}

type waitKey struct{}

// WithWait returns a context whose agent calls may take d longer than the
// client's timeout: a scale or a delete answers once the instances it stops
// have drained and exited.
func WithWait(ctx context.Context, d time.Duration) context.Context {
	return context.WithValue(ctx, waitKey{}, d)
}

// callTimeout is the bound of a call made with ctx.
func (c *Client) callTimeout(ctx context.Context) time.Duration {
	t := c.Timeout
	if t <= 0 {
		t = DefaultCallTimeout
	}
	if d, ok := ctx.Value(waitKey{}).(time.Duration); ok && d > 0 {
		t += d
	}
	return t
}

// errNoAnswer is the cause of a call cancelled by its own timeout.
var errNoAnswer = errors.New("no answer")

// CallError is a call that got no answer: the agent is not running, the
// connection broke, or it did not answer within the call's timeout. It is
// transient: the same call may succeed later.
type CallError struct {
	URL string
	// Timeout is set when the call was cut by its timeout.
	Timeout time.Duration
	Err     error
}

func (e *CallError) Error() string {
	if e.Timeout > 0 {
		return fmt.Sprintf("agent at %s did not answer within %s (is `runway agent` stopped or overloaded?)", e.URL, e.Timeout)
	}
	return fmt.Sprintf("agent at %s: %v (is `runway agent` running?)", e.URL, e.Err)
}

// Unwrap returns the transport's error (nil for a timeout of the call itself,
// which is not the caller's context ending).
func (e *CallError) Unwrap() error { return e.Err }

// Transient reports true: nothing was decided, the call may be tried again.
func (e *CallError) Transient() bool { return true }

// callErr turns the error of a call made under cctx (derived from ctx with
// the call's timeout t) into a CallError.
func (c *Client) callErr(ctx, cctx context.Context, t time.Duration, err error) error {
	if ctx.Err() == nil && errors.Is(context.Cause(cctx), errNoAnswer) {
		return &CallError{URL: c.BaseURL, Timeout: t}
	}
	return &CallError{URL: c.BaseURL, Err: err}
}

// APIError is a problem returned by the agent.
type APIError struct {
	Problem
}

// Transient reports whether the agent failed rather than refused: a 5xx
// answer (it is restarting, or something on its side broke) may pass later.
func (e *APIError) Transient() bool { return e.Status >= 500 }

func (e *APIError) Error() string {
	if e.Field != "" && !strings.HasPrefix(e.Detail, e.Field) {
		return fmt.Sprintf("agent: %s (%d): %s: %s", e.Title, e.Status, e.Field, e.Detail)
	}
	return fmt.Sprintf("agent: %s (%d): %s", e.Title, e.Status, e.Detail)
}

// Do sends one call of the agent API (for an endpoint without its own
// method): body, when not nil, as JSON; the answer decoded into out; a
// problem as *APIError and no answer as *CallError. It returns the status.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	t := c.callTimeout(ctx)
	cctx, cancel := context.WithTimeoutCause(ctx, t, errNoAnswer)
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, method, c.BaseURL+path, rd)
	if err != nil {
		return 0, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	fence := fenceFrom(ctx)
	if method == http.MethodGet {
		fence = nil
	}
	if fence != nil {
		req.Header.Set(ExpectGenerationHeader, strconv.FormatInt(fence.Expect(), 10))
	}
	// Every call of the agent API is idempotent (groups by name, scale to a
	// count, routes by service). Saying so lets net/http send a request
	// again, once, when the keep-alive connection it went out on dies before
	// an answer, as when the agent is killed mid-call: the next agent gets it
	// from the socket's backlog (runway up holds the socket).
	req.Header.Set("Idempotency-Key", "agent-api")
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, c.callErr(ctx, cctx, t, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return resp.StatusCode, DecodeProblem(resp)
	}
	if g, err := strconv.ParseInt(resp.Header.Get(GenerationHeader), 10, 64); fence != nil && err == nil {
		fence.Saw(ctx, g)
	}
	if out != nil && resp.StatusCode != http.StatusNoContent {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			if cctx.Err() != nil {
				return resp.StatusCode, c.callErr(ctx, cctx, t, err)
			}
			return resp.StatusCode, fmt.Errorf("decode agent response: %w", err)
		}
	}
	return resp.StatusCode, nil
}

// DecodeProblem reads the answer of a failed call as an *APIError (a body
// that is not a problem becomes one with the status and the text).
func DecodeProblem(resp *http.Response) error {
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
	_, err := c.Do(ctx, http.MethodGet, "/v1/health", nil, &h)
	return h, err
}

// CreateGroup creates a group (idempotent by name); created is false when
// the same group existed.
func (c *Client) CreateGroup(ctx context.Context, spec GroupSpec) (GroupStatus, bool, error) {
	var st GroupStatus
	code, err := c.Do(ctx, http.MethodPost, "/v1/groups", spec, &st)
	return st, code == http.StatusCreated, err
}

// Groups lists the groups.
func (c *Client) Groups(ctx context.Context) ([]GroupStatus, error) {
	var out []GroupStatus
	_, err := c.Do(ctx, http.MethodGet, "/v1/groups", nil, &out)
	return out, err
}

// Group returns one group.
func (c *Client) Group(ctx context.Context, name string) (GroupStatus, error) {
	var st GroupStatus
	_, err := c.Do(ctx, http.MethodGet, "/v1/groups/"+url.PathEscape(name), nil, &st)
	return st, err
}

// ScaleGroup sets the instance count of a group; it returns once stopped
// instances are gone (new instances may still be starting). Instances a
// scale down stops are drained for at most drain (0: the agent's default).
func (c *Client) ScaleGroup(ctx context.Context, name string, n int, drain time.Duration) (GroupStatus, error) {
	var st GroupStatus
	req := ScaleRequest{Instances: &n}
	if drain > 0 {
		req.DrainTimeout = drain.String()
	}
	_, err := c.Do(ctx, http.MethodPut, "/v1/groups/"+url.PathEscape(name)+"/scale", req, &st)
	return st, err
}

// PutGroupSecrets gives a group the values of its secrets (kept in the
// agent's memory only).
func (c *Client) PutGroupSecrets(ctx context.Context, name string, values map[string]string) error {
	_, err := c.Do(ctx, http.MethodPut, "/v1/groups/"+url.PathEscape(name)+"/secrets", GroupSecrets{Values: values}, nil)
	return err
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
	_, err := c.Do(ctx, http.MethodDelete, p, nil, nil)
	return err
}

// Targets returns the routable instances of every group.
func (c *Client) Targets(ctx context.Context) ([]GroupTargets, error) {
	var out []GroupTargets
	_, err := c.Do(ctx, http.MethodGet, "/v1/targets", nil, &out)
	return out, err
}

// Routes lists the routes.
func (c *Client) Routes(ctx context.Context) ([]Route, error) {
	var out []Route
	_, err := c.Do(ctx, http.MethodGet, "/v1/routes", nil, &out)
	return out, err
}

// KeyPath is the URL path of an endpoint by route key: prefix +
// environment/service of k, with the project and
// preview query parameters of k and the extra ones.
func KeyPath(prefix string, k RouteKey, extra url.Values) string {
	p := prefix + url.PathEscape(k.Environment) + "/" + url.PathEscape(k.Service)
	v := url.Values{}
	for name, vs := range extra {
		v[name] = vs
	}
	if k.Project != "" {
		v.Set("project", k.Project)
	}
	if k.Preview {
		v.Set("preview", "true")
	}
	if len(v) > 0 {
		p += "?" + v.Encode()
	}
	return p
}

// PutRoute sets the route of r.Key(): a service of a project in an
// environment, or its preview.
func (c *Client) PutRoute(ctx context.Context, r Route) (Route, error) {
	var out Route
	_, err := c.Do(ctx, http.MethodPut, KeyPath("/v1/routes/", r.Key(), nil), r, &out)
	return out, err
}

// Route returns the route of key.
func (c *Client) Route(ctx context.Context, key RouteKey) (Route, error) {
	var out Route
	_, err := c.Do(ctx, http.MethodGet, KeyPath("/v1/routes/", key, nil), nil, &out)
	return out, err
}

// IsNotFound reports whether err is the agent's 404.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// DeleteRoute removes the route of key.
func (c *Client) DeleteRoute(ctx context.Context, key RouteKey) error {
	_, err := c.Do(ctx, http.MethodDelete, KeyPath("/v1/routes/", key, nil), nil, nil)
	return err
}

// Logs streams the log lines of an instance matching q to emit.
func (c *Client) Logs(ctx context.Context, group, id string, q LogQuery, emit func(LogLine) error) error {
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
	// A followed stream is open-ended; a read of existing lines is a call
	// like any other.
	cctx, cancel := ctx, context.CancelFunc(func() {})
	t := c.callTimeout(ctx)
	if !q.Follow {
		cctx, cancel = context.WithTimeoutCause(ctx, t, errNoAnswer)
	}
	defer cancel()
	req, err := http.NewRequestWithContext(cctx, http.MethodGet,
		c.BaseURL+"/v1/groups/"+url.PathEscape(group)+"/instances/"+url.PathEscape(id)+"/logs?"+v.Encode(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return c.callErr(ctx, cctx, t, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		return DecodeProblem(resp)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var l LogLine
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
	if err := sc.Err(); err != nil {
		if cctx.Err() != nil {
			return c.callErr(ctx, cctx, t, err)
		}
		return err
	}
	return nil
}

// LogGroups lists the groups whose logs the agent keeps, live and deleted,
// newest first, of one environment and service ("" for all).
func (c *Client) LogGroups(ctx context.Context, environment, service string) ([]LogGroup, error) {
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
	var out []LogGroup
	_, err := c.Do(ctx, http.MethodGet, p, nil, &out)
	return out, err
}

// Instance returns one instance of a group.
func (c *Client) Instance(ctx context.Context, group, id string) (InstanceStatus, error) {
	var st InstanceStatus
	_, err := c.Do(ctx, http.MethodGet, "/v1/groups/"+url.PathEscape(group)+"/instances/"+url.PathEscape(id), nil, &st)
	return st, err
}

// Stats returns the proxy's statistics per group of the route of key over the last window.
func (c *Client) Stats(ctx context.Context, key RouteKey, window time.Duration) (map[string]WindowStats, error) {
	var out map[string]WindowStats
	_, err := c.Do(ctx, http.MethodGet, KeyPath("/v1/stats/", key, url.Values{"window": {window.String()}}), nil, &out)
	return out, err
}

// Counters returns the served and failed request totals of the route of key.
func (c *Client) Counters(ctx context.Context, key RouteKey) (Counters, error) {
	var out Counters
	_, err := c.Do(ctx, http.MethodGet, KeyPath("/v1/counters/", key, nil), nil, &out)
	return out, err
}

// SetMaintenance turns the maintenance page of the route of key on with
// message, or off when message is "".
func (c *Client) SetMaintenance(ctx context.Context, key RouteKey, message string) error {
	path := KeyPath("/v1/maintenance/", key, nil)
	if message == "" {
		_, err := c.Do(ctx, http.MethodDelete, path, nil, nil)
		return err
	}
	_, err := c.Do(ctx, http.MethodPut, path, map[string]string{"message": message}, nil)
	return err
}
