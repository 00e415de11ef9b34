package client

import (
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

	"github.com/runwayhq/runway/internal/apiwire"
)

func servicePath(project, env, service string) string {
	return "/v1/projects/" + url.PathEscape(project) + "/environments/" + url.PathEscape(env) + "/services/" + url.PathEscape(service)
}

// Logs reads a service's log lines (q.Follow false) or follows them until
// ctx ends (nil) or the server ends the stream (ErrStreamEnded), calling
// emit for each.
func (c *Client) Logs(ctx context.Context, q apiwire.LogsQuery, emit func(apiwire.LogLine) error) error {
	v := url.Values{}
	for k, x := range map[string]string{"release": q.Release, "instance": q.Instance, "filter": q.Filter} {
		if x != "" {
			v.Set(k, x)
		}
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Tail > 0 {
		v.Set("tail", strconv.Itoa(q.Tail))
	}
	path := servicePath(q.Project, q.Environment, q.Service) + "/logs"
	if !q.Follow {
		var out []apiwire.LogLine
		if err := c.do(ctx, http.MethodGet, path+"?"+v.Encode(), nil, &out); err != nil {
			return err
		}
		for _, l := range out {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	v.Set("follow", "true")
	err := c.stream(ctx, path+"?"+v.Encode(), func(e SSEEvent) error {
		switch e.Event {
		case "log":
			var l apiwire.LogLine
			if err := json.Unmarshal(e.Data, &l); err != nil {
				return fmt.Errorf("decode log line: %w", err)
			}
			return emit(l)
		case "error":
			return streamError(e.Data)
		}
		return nil
	})
	return err
}

// Events reads the newest events f selects, or follows them until ctx ends
// (reconnecting after the last event seen when the connection breaks).
func (c *Client) Events(ctx context.Context, f apiwire.EventFilter, emit func(apiwire.ServiceEvent) error) error {
	query := func() string {
		v := url.Values{}
		for k, x := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service, "release": f.Release, "after": f.After} {
			if x != "" {
				v.Set(k, x)
			}
		}
		if f.Limit > 0 {
			v.Set("limit", strconv.Itoa(f.Limit))
		}
		if f.Follow {
			v.Set("follow", "true")
		}
		return "/v1/events?" + v.Encode()
	}
	if !f.Follow {
		var out []apiwire.ServiceEvent
		if err := c.do(ctx, http.MethodGet, query(), nil, &out); err != nil {
			return err
		}
		for _, e := range out {
			if err := emit(e); err != nil {
				return err
			}
		}
		return nil
	}
	for {
		err := c.stream(ctx, query(), func(se SSEEvent) error {
			switch se.Event {
			case "event", "wait":
				var e apiwire.ServiceEvent
				if err := json.Unmarshal(se.Data, &e); err != nil {
					return fmt.Errorf("decode event: %w", err)
				}
				if e.ID != "" {
					f.After = e.ID
				}
				return emit(e)
			case "error":
				return streamError(se.Data)
			}
			return nil
		})
		var ce *Error
		if ctx.Err() != nil || errors.As(err, &ce) || (err != nil && !errors.Is(err, errBroken)) {
			return err
		}
		// The connection broke (the server restarted): continue after the
		// last event seen.
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}

// Overview is one frame of `runway top`.
func (c *Client) Overview(ctx context.Context, project, env string) (*apiwire.Overview, error) {
	var out apiwire.Overview
	return &out, c.do(ctx, http.MethodGet, "/v1/projects/"+url.PathEscape(project)+"/environments/"+url.PathEscape(env)+"/overview", nil, &out)
}

// errBroken marks a stream whose connection failed or ended without the
// client asking (the server went away).
var errBroken = errors.New("the stream broke")

// ErrStreamEnded is a followed stream the server ended cleanly: a deleted
// group's logs read to their end, or the server shutting down.
var ErrStreamEnded = fmt.Errorf("%w: the server ended the stream", errBroken)

// stream opens a server-sent event stream and reads it until ctx ends; it
// returns nil only then.
func (c *Client) stream(ctx context.Context, path string, fn func(SSEEvent) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	hc := *c.http
	hc.Timeout = 0 // open-ended: ctx ends it
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("%w: reach Runway server at %s: %v", errBroken, c.base, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var p apiwire.Problem
		if json.Unmarshal(data, &p) == nil && p.Status != 0 {
			return &Error{p}
		}
		return &Error{apiwire.Problem{Status: resp.StatusCode, Title: resp.Status, Detail: fmt.Sprintf("GET %s: %s", path, strings.TrimSpace(string(data)))}}
	}
	var fnErr error
	err = readSSE(resp.Body, func(e SSEEvent) error {
		if err := fn(e); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	switch {
	case ctx.Err() != nil:
		return nil
	case fnErr != nil:
		return fnErr
	case err == nil:
		return ErrStreamEnded
	}
	return fmt.Errorf("%w: %v", errBroken, err)
}

// streamErr is an `event: error` the server sent before ending a stream.
type streamErr struct{ detail string }

func (e *streamErr) Error() string { return e.detail }

func streamError(data []byte) error {
	var p struct {
		Detail string `json:"detail"`
	}
	_ = json.Unmarshal(data, &p)
	if p.Detail == "" {
		p.Detail = "the server ended the stream with an error"
	}
	return &streamErr{p.Detail}
}

func alarmQuery(f apiwire.AlarmFilter) string {
	v := url.Values{}
	for k, x := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service} {
		if x != "" {
			v.Set(k, x)
		}
	}
	return v.Encode()
}

// Alarms lists alarms with their states.
func (c *Client) Alarms(ctx context.Context, f apiwire.AlarmFilter) ([]apiwire.Alarm, error) {
	var out []apiwire.Alarm
	return out, c.do(ctx, http.MethodGet, "/v1/alarms?"+alarmQuery(f), nil, &out)
}

// Notifications lists the newest webhook deliveries of alarms.
func (c *Client) Notifications(ctx context.Context, f apiwire.AlarmFilter) ([]apiwire.Notification, error) {
	var out []apiwire.Notification
	return out, c.do(ctx, http.MethodGet, "/v1/notifications?"+alarmQuery(f), nil, &out)
}
