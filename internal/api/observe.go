package api

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// instanceRe is what instance ids look like (the agent's 8 hex digits;
// other targets' names).
var instanceRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// maxTail bounds the lines one logs request returns.
const maxTail = 10000

// logs answers the service's log lines: a JSON array, or with follow=true
// a stream of server-sent `log` events until the client goes away.
func (h *Handler) logs(w http.ResponseWriter, r *http.Request, _ string) {
	q, err := logsQuery(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !q.Follow {
		out := []apiwire.LogLine{}
		if err := h.opts.Backend.Logs(r.Context(), q, func(l apiwire.LogLine) error { out = append(out, l); return nil }); err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	// Problems found before the first line (an unknown release) are answered
	// as problems; the stream starts with the first line or keep-alive.
	if err := h.opts.Backend.CheckLogs(r.Context(), q); err != nil {
		h.fail(w, r, err)
		return
	}
	s := newSSE(w)
	err = h.opts.Backend.Logs(r.Context(), q, func(l apiwire.LogLine) error { return s.send("log", "", l) })
	if r.Context().Err() != nil {
		err = nil
	}
	s.close(err)
}

func logsQuery(r *http.Request) (apiwire.LogsQuery, error) {
	v := r.URL.Query()
	q := apiwire.LogsQuery{Project: r.PathValue("project"), Environment: r.PathValue("env"), Service: r.PathValue("service"),
		Release: v.Get("release"), Instance: v.Get("instance"), Filter: v.Get("filter")}
	if err := checkProject(q.Project); err != nil {
		return q, err
	}
	if err := checkTarget(q.Environment, q.Service); err != nil {
		return q, err
	}
	if q.Release != "" && !requestIDRe.MatchString(q.Release) {
		return q, badQuery("release", q.Release, "a release id (26 characters, such as 01JD3Q8Y7Z5W2X4V6T8R0P2N4A)")
	}
	if q.Instance != "" && !instanceRe.MatchString(q.Instance) {
		return q, badQuery("instance", q.Instance, "an instance id such as a58980c1")
	}
	if len(q.Filter) > 1000 {
		return q, badQuery("filter", q.Filter[:20], "at most 1000 bytes")
	}
	if s := v.Get("since"); s != "" {
		t, err := parseSince(s, time.Now())
		if err != nil {
			return q, badQuery("since", s, "an RFC 3339 time or a duration back from now, such as 10m")
		}
		q.Since = t
	}
	if s := v.Get("tail"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 || n > maxTail {
			return q, badQuery("tail", s, "a whole number from 0 to "+strconv.Itoa(maxTail))
		}
		q.Tail = n
	}
	follow, err := boolQuery(v.Get("follow"))
	if err != nil {
		return q, badQuery("follow", v.Get("follow"), "true or false")
	}
	q.Follow = follow
	return q, nil
}

// parseSince reads `since`: an RFC 3339 time, or a positive duration back
// from now ("10m", "1h30m").
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func boolQuery(s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	return strconv.ParseBool(s)
}

func badQuery(name, got, want string) error {
	return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter %s %q: want %s", name, trunc(got), want)
}

// events answers the feed of events: a JSON array of the newest, or with
// follow=true server-sent `event` events (id = the event's id, so a client
// reconnecting passes it as after=) and `wait` events (what a release in
// progress waits for, not stored) until the client goes away.
func (h *Handler) events(w http.ResponseWriter, r *http.Request, _ string) {
	v := r.URL.Query()
	f := apiwire.EventFilter{Project: v.Get("project"), Environment: v.Get("environment"), Service: v.Get("service"),
		Release: v.Get("release"), After: v.Get("after"), Limit: 100}
	for name, x := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service} {
		if x != "" && !nameRe.MatchString(x) {
			h.fail(w, r, badQuery(name, x, "a valid name"))
			return
		}
	}
	for name, x := range map[string]string{"release": f.Release, "after": f.After} {
		if x != "" && !requestIDRe.MatchString(x) {
			h.fail(w, r, badQuery(name, x, "an id (26 characters)"))
			return
		}
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			h.fail(w, r, badQuery("limit", s, "a whole number from 1 to 1000"))
			return
		}
		f.Limit = n
	}
	follow, err := boolQuery(v.Get("follow"))
	if err != nil {
		h.fail(w, r, badQuery("follow", v.Get("follow"), "true or false"))
		return
	}
	f.Follow = follow
	if !f.Follow {
		out := []apiwire.ServiceEvent{}
		if err := h.opts.Backend.Events(r.Context(), f, func(e apiwire.ServiceEvent) error { out = append(out, e); return nil }); err != nil {
			h.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
		return
	}
	s := newSSE(w)
	err = h.opts.Backend.Events(r.Context(), f, func(e apiwire.ServiceEvent) error {
		kind := "event"
		if e.Kind == "wait" {
			kind = "wait"
		}
		return s.send(kind, e.ID, e)
	})
	if r.Context().Err() != nil {
		err = nil
	}
	s.close(err)
}

// overview answers one frame of `runway top`.
func (h *Handler) overview(w http.ResponseWriter, r *http.Request, _ string) {
	project, env := r.PathValue("project"), r.PathValue("env")
	if err := checkProject(project); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := checkTarget(env, "x"); err != nil {
		h.fail(w, r, err)
		return
	}
	o, err := h.opts.Backend.Overview(r.Context(), project, env)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// metrics serves the server's Prometheus exposition (docs/metrics.md).
func (h *Handler) metrics(w http.ResponseWriter, r *http.Request, _ string) {
	if h.opts.Metrics == nil {
		writeProblem(w, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "this server exports no metrics"))
		return
	}
	h.opts.Metrics.ServeHTTP(w, r)
}

// routeLabel is the label of a request's route in the API's metrics: its
// pattern, never its path (bounded: one value per route).
func routeLabel(pattern string) string {
	if pattern == "" {
		return "unmatched"
	}
	return strings.TrimSpace(pattern)
}

func alarmFilter(r *http.Request) (apiwire.AlarmFilter, error) {
	v := r.URL.Query()
	f := apiwire.AlarmFilter{Project: v.Get("project"), Environment: v.Get("environment"), Service: v.Get("service")}
	for name, x := range map[string]string{"project": f.Project, "environment": f.Environment, "service": f.Service} {
		if x != "" && !nameRe.MatchString(x) {
			return f, badQuery(name, x, "a valid name")
		}
	}
	return f, nil
}

// alarms lists alarms with their states (runway alarms).
func (h *Handler) alarms(w http.ResponseWriter, r *http.Request, _ string) {
	f, err := alarmFilter(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := h.opts.Backend.Alarms(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []apiwire.Alarm{}
	}
	writeJSON(w, http.StatusOK, list)
}

// notifications lists the newest webhook deliveries (runway alarms --deliveries).
func (h *Handler) notifications(w http.ResponseWriter, r *http.Request, _ string) {
	f, err := alarmFilter(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	list, err := h.opts.Backend.Notifications(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []apiwire.Notification{}
	}
	writeJSON(w, http.StatusOK, list)
}
