package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/supervisor"
)

// maxBody caps request bodies.
const maxBody = 1 << 20

// decodeStrict decodes exactly one JSON object into v, refusing unknown
// fields and trailing data; errors name the offending field.
func decodeStrict(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return &supervisor.FieldError{Field: "body", Msg: "is empty: send a JSON object"}
		case errors.As(err, &te):
			return &supervisor.FieldError{Field: te.Field, Msg: fmt.Sprintf("want a JSON %s, got %s", te.Type, te.Value)}
		case errors.As(err, &se):
			return &supervisor.FieldError{Field: "body", Msg: fmt.Sprintf("invalid JSON at byte %d: %v", se.Offset, err)}
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return &supervisor.FieldError{Field: f, Msg: "unknown field (see docs/agent-api.md)"}
		}
		return &supervisor.FieldError{Field: "body", Msg: err.Error()}
	}
	if dec.More() {
		return &supervisor.FieldError{Field: "body", Msg: "has data after the JSON object"}
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return &supervisor.FieldError{Field: "body", Msg: "has data after the JSON object"}
	}
	return nil
}

// DecodeGroupSpec parses the body of POST /v1/groups. Validation that needs
// the machine (command exists, work_dir) happens in the supervisor.
func DecodeGroupSpec(b []byte) (supervisor.GroupSpec, error) {
	var s supervisor.GroupSpec
	if err := decodeStrict(bytes.NewReader(b), &s); err != nil {
		return s, err
	}
	if s.Name == "" {
		return s, &supervisor.FieldError{Field: "name", Msg: "is required"}
	}
	return s, nil
}

// ScaleRequest is the body of PUT /v1/groups/{name}/scale.
type ScaleRequest struct {
	Instances *int `json:"instances"`
	// DrainTimeout bounds the drain of the instances a scale down stops (a
	// Go duration; "" or "0s": the agent's --drain-timeout).
	DrainTimeout string `json:"drain_timeout,omitempty"`
}

// MaxDrainTimeout is the longest drain a scale or delete call may ask for.
const MaxDrainTimeout = time.Hour

// DecodeScale parses the body of PUT /v1/groups/{name}/scale: the instance
// count and the drain timeout (0 when absent).
func DecodeScale(b []byte) (int, time.Duration, error) {
	var s ScaleRequest
	if err := decodeStrict(bytes.NewReader(b), &s); err != nil {
		return 0, 0, err
	}
	if s.Instances == nil {
		return 0, 0, &supervisor.FieldError{Field: "instances", Msg: "is required"}
	}
	if *s.Instances < 0 || *s.Instances > supervisor.MaxInstances {
		return 0, 0, &supervisor.FieldError{Field: "instances", Msg: fmt.Sprintf("%d: want 0 to %d", *s.Instances, supervisor.MaxInstances)}
	}
	drain, err := ParseDrainTimeout(s.DrainTimeout)
	return *s.Instances, drain, err
}

// ParseDrainTimeout parses the drain_timeout of a scale body or a delete
// query: "" is 0 (the agent's default), else a Go duration from 0 to
// MaxDrainTimeout.
func ParseDrainTimeout(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 || d > MaxDrainTimeout {
		return 0, &supervisor.FieldError{Field: "drain_timeout", Msg: fmt.Sprintf("%q: want a duration from 0s to %s, such as 30s (0s: the agent's --drain-timeout)", v, MaxDrainTimeout)}
	}
	return d, nil
}

var (
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]{0,62})$`)
	hostRE  = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
)

// DecodeRoute parses the body of PUT /v1/routes/{environment}/{service}.
func DecodeRoute(env, service string, b []byte) (Route, error) {
	var r Route
	if err := decodeStrict(bytes.NewReader(b), &r); err != nil {
		return r, err
	}
	if r.Environment == "" {
		r.Environment = env
	}
	if r.Service == "" {
		r.Service = service
	}
	if r.Environment != env {
		return r, &supervisor.FieldError{Field: "environment", Msg: fmt.Sprintf("%q differs from the URL's %q", r.Environment, env)}
	}
	if r.Service != service {
		return r, &supervisor.FieldError{Field: "service", Msg: fmt.Sprintf("%q differs from the URL's %q", r.Service, service)}
	}
	return r, r.validate()
}

func (r *Route) validate() error {
	if !labelRE.MatchString(r.Environment) {
		return &supervisor.FieldError{Field: "environment", Msg: fmt.Sprintf("%q: use lowercase letters, digits, '.', '_' or '-'", r.Environment)}
	}
	if !labelRE.MatchString(r.Service) {
		return &supervisor.FieldError{Field: "service", Msg: fmt.Sprintf("%q: use lowercase letters, digits, '.', '_' or '-'", r.Service)}
	}
	if len(r.Hosts) > 100 {
		return &supervisor.FieldError{Field: "hosts", Msg: "at most 100 hosts"}
	}
	seen := map[string]bool{}
	for i, h := range r.Hosts {
		h = strings.ToLower(h)
		r.Hosts[i] = h
		if len(h) > 253 || !hostRE.MatchString(h) {
			return &supervisor.FieldError{Field: fmt.Sprintf("hosts[%d]", i), Msg: fmt.Sprintf("%q is not a host name (such as api.example.test or *.example.test)", h)}
		}
		if seen[h] {
			return &supervisor.FieldError{Field: fmt.Sprintf("hosts[%d]", i), Msg: fmt.Sprintf("%q is listed twice", h)}
		}
		seen[h] = true
	}
	if r.PathPrefix != "" && (!strings.HasPrefix(r.PathPrefix, "/") || len(r.PathPrefix) > 1 && strings.HasSuffix(r.PathPrefix, "/") || len(r.PathPrefix) > 256 || strings.ContainsAny(r.PathPrefix, "?# \t")) {
		return &supervisor.FieldError{Field: "path_prefix", Msg: fmt.Sprintf("%q: start with / and do not end with one, such as /api", r.PathPrefix)}
	}
	if len(r.Backends) > 100 {
		return &supervisor.FieldError{Field: "backends", Msg: "at most 100 backends"}
	}
	total := 0
	groups := map[string]bool{}
	for i, b := range r.Backends {
		if b.Group == "" {
			return &supervisor.FieldError{Field: fmt.Sprintf("backends[%d].group", i), Msg: "is required"}
		}
		if groups[b.Group] {
			return &supervisor.FieldError{Field: fmt.Sprintf("backends[%d].group", i), Msg: fmt.Sprintf("%q is listed twice", b.Group)}
		}
		groups[b.Group] = true
		if b.Weight < 0 || b.Weight > 1000 {
			return &supervisor.FieldError{Field: fmt.Sprintf("backends[%d].weight", i), Msg: fmt.Sprintf("%d: want 0 to 1000", b.Weight)}
		}
		total += b.Weight
	}
	if len(r.Backends) > 0 && total == 0 {
		return &supervisor.FieldError{Field: "backends", Msg: "all weights are 0: give at least one backend a positive weight, or send no backends"}
	}
	return nil
}

// ParseLogQuery parses the query of GET .../logs: since (RFC 3339 time or
// a duration back from now such as 5m), filter, stream (stdout|stderr),
// tail (a number of lines), follow (true|1), format (text|json).
func ParseLogQuery(v url.Values, now time.Time) (supervisor.LogQuery, string, error) {
	var q supervisor.LogQuery
	if s := v.Get("since"); s != "" {
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			q.Since = t
		} else if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			q.Since = now.Add(-d)
		} else {
			return q, "", &supervisor.FieldError{Field: "since", Msg: fmt.Sprintf("%q: want an RFC 3339 time or a duration such as 5m", s)}
		}
	}
	q.Filter = v.Get("filter")
	if len(q.Filter) > 1024 {
		return q, "", &supervisor.FieldError{Field: "filter", Msg: "longer than 1024 bytes"}
	}
	switch q.Stream = v.Get("stream"); q.Stream {
	case "", "stdout", "stderr":
	default:
		return q, "", &supervisor.FieldError{Field: "stream", Msg: fmt.Sprintf("%q: want stdout or stderr", q.Stream)}
	}
	if s := v.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > 1_000_000 {
			return q, "", &supervisor.FieldError{Field: "tail", Msg: fmt.Sprintf("%q: want a number of lines from 0 to 1000000", s)}
		}
		q.Tail = n
	}
	switch s := v.Get("follow"); s {
	case "", "0", "false":
	case "1", "true":
		q.Follow = true
	default:
		return q, "", &supervisor.FieldError{Field: "follow", Msg: fmt.Sprintf("%q: want true or false", s)}
	}
	format := v.Get("format")
	switch format {
	case "":
		format = "text"
	case "text", "json":
	default:
		return q, "", &supervisor.FieldError{Field: "format", Msg: fmt.Sprintf("%q: want text or json", format)}
	}
	return q, format, nil
}
