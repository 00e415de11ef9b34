package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/target"
)

// DefaultAlarmInterval is how often the server evaluates every live
// service's alarms (Options.AlarmInterval, --alarm-interval).
const DefaultAlarmInterval = 10 * time.Second

// alarmWindow is the statistics window of error_rate, latency_p99 and
// request_rate (observe clamps it to what the target measures).
const alarmWindow = time.Minute

// Alarm states.
const (
	AlarmOK     = "OK"
	AlarmAlert  = "ALERT"
	AlarmNoData = "NO_DATA"
)

// alarmDef is an alarm as evaluated: a manifest's alarm block, or a
// built-in one (no metric: its condition is computed from what the target
// and the store say; it fires at once and notifies every channel of the
// project).
type alarmDef struct {
	Name       string   `json:"name"`
	Builtin    bool     `json:"builtin,omitempty"`
	Metric     string   `json:"metric,omitempty"`
	Comparison string   `json:"comparison,omitempty"`
	Threshold  float64  `json:"threshold,omitempty"`
	For        string   `json:"for,omitempty"`
	Notify     []string `json:"notify,omitempty"`
	Doc        string   `json:"doc,omitempty"`
}

var builtinDefs = []alarmDef{
	{Name: AlarmFailureDirty, Builtin: true, Doc: "a release ended FailureDirty and no later release succeeded"},
	{Name: AlarmNoHealthy, Builtin: true, Doc: "traffic is routed to the service and no instance is healthy"},
	{Name: AlarmCrashLoop, Builtin: true, Doc: "an instance is crash-looping"},
}

// metric is the value of a manifest alarm's metric; false when there is
// none (no request in the window has no error rate).
func (o *observation) metric(name string) (float64, bool) {
	switch name {
	case "error_rate":
		return o.errorRate(), o.requests > 0
	case "latency_p99":
		if o.requests == 0 {
			return 0, false
		}
		return o.p99.Seconds(), true
	case "request_rate":
		return float64(o.requests) / o.window.Seconds(), true
	case "healthy_instances":
		return float64(o.healthy), true
	case "restarts":
		return float64(o.restarts), true
	case "cpu":
		return o.cpu, true
	case "memory":
		return float64(o.rss) / (1 << 20), true
	}
	return 0, false
}

// holds reports whether a definition's condition holds, and the value
// shown; ok is false without data.
func (o *observation) holds(d alarmDef) (cond bool, value string, ok bool) {
	if d.Builtin {
		for _, n := range builtinAlerts(o.releases, o.routed, o.healthy, o.crashLoop) {
			if n == d.Name {
				return true, "", true
			}
		}
		return false, "", true
	}
	v, ok := o.metric(d.Metric)
	if !ok {
		return false, "", false
	}
	value = strconv.FormatFloat(v, 'g', 4, 64)
	switch d.Comparison {
	case ">":
		return v > d.Threshold, value, true
	case ">=":
		return v >= d.Threshold, value, true
	case "<":
		return v < d.Threshold, value, true
	case "<=":
		return v <= d.Threshold, value, true
	}
	return false, value, false
}

// evaluator evaluates every live service's alarms every interval: the
// manifest's alarm blocks and the built-in ones. A state change is an
// event and, entering or leaving ALERT, a notification to the alarm's
// channels. It only reads the targets.
type evaluator struct {
	b        *backend
	interval time.Duration
	now      func() time.Time
	// gauge is told how many alarms are in each state after each round.
	gauge func(byState map[string]int)
}

func (ev *evaluator) run(ctx context.Context, wg *sync.WaitGroup) {
	defer wg.Done()
	t := time.NewTicker(ev.interval)
	defer t.Stop()
	for {
		ev.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round evaluates every live service once.
func (ev *evaluator) round(ctx context.Context) {
	rs, err := ev.b.st.LiveReleases(ctx)
	if err != nil {
		return
	}
	byState := map[string]int{AlarmOK: 0, AlarmAlert: 0, AlarmNoData: 0}
	for _, r := range rs {
		spec, err := engine.DecodeSpec(r.Spec)
		if err != nil {
			continue
		}
		drv, err := ev.b.drivers.For(spec.Target)
		if err != nil || drv == nil {
			continue
		}
		ref := target.ServiceRef{Project: r.Project, Environment: r.Environment, Service: r.Service}
		for _, st := range ev.service(ctx, drv, ref, defsOf(&spec.Service)) {
			byState[st]++
		}
	}
	if ev.gauge != nil && ctx.Err() == nil {
		ev.gauge(byState)
	}
}

// defsOf lists a service's alarms: the built-in ones, then its manifest's.
func defsOf(svc *config.Service) []alarmDef {
	defs := append([]alarmDef(nil), builtinDefs...)
	for _, a := range svc.Alarms {
		defs = append(defs, alarmDef{Name: a.Name, Metric: a.Metric, Comparison: a.Comparison, Threshold: a.Threshold,
			For: a.For.String(), Notify: a.Notify})
	}
	return defs
}

// service evaluates one service's alarms and returns their states.
func (ev *evaluator) service(ctx context.Context, drv target.Target, ref target.ServiceRef, defs []alarmDef) []string {
	now := ev.now()
	prev := map[string]*store.AlarmState{}
	if list, err := ev.b.st.ListAlarmStates(ctx, store.AlarmFilter{Project: ref.Project, Environment: ref.Environment, Service: ref.Service}); err == nil {
		for _, a := range list {
			prev[a.Name] = a
		}
	} else {
		return nil
	}
	o, err := observe(ctx, drv, ref, alarmWindow)
	if err == nil {
		o.releases, err = ev.b.st.ListReleases(ctx, store.ReleaseFilter{Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Limit: 100})
	}
	var states []string
	for _, d := range defs {
		p := prev[d.Name]
		delete(prev, d.Name)
		next := &store.AlarmState{Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Name: d.Name, UpdatedAt: now}
		was := ""
		if p != nil {
			was, next.Since, next.PendingSince = p.State, p.Since, p.PendingSince
		}
		cond, value, ok := false, "", false
		if err == nil {
			cond, value, ok = o.holds(d)
		}
		next.Value = value
		forDur, _ := time.ParseDuration(d.For)
		switch {
		case !ok:
			next.State, next.PendingSince = AlarmNoData, time.Time{}
		case cond:
			if next.PendingSince.IsZero() {
				next.PendingSince = now
			}
			next.State = AlarmOK
			if was == AlarmAlert || now.Sub(next.PendingSince) >= forDur {
				next.State = AlarmAlert
			}
		default:
			next.State, next.PendingSince = AlarmOK, time.Time{}
		}
		if next.State != was {
			next.Since = now
		}
		next.Detail, _ = json.Marshal(d)
		if perr := ev.b.st.PutAlarmState(ctx, next); perr != nil {
			ev.b.log.Warn("record alarm state", "alarm", d.Name, "service", ref.String(), "err", perr)
			continue
		}
		states = append(states, next.State)
		// Changes into and out of ALERT are events; OK and NO_DATA (no
		// traffic in the window) alternate too often to be worth one.
		if next.State != was && (next.State == AlarmAlert || was == AlarmAlert) {
			ev.changed(ctx, ref, d, was, next)
		}
	}
	// Alarms the manifest no longer has are forgotten.
	names := make([]string, 0, len(prev))
	for n := range prev {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		_ = ev.b.st.DeleteAlarmState(ctx, ref.Project, ref.Environment, ref.Service, n)
	}
	return states
}

// alarmPayload is the JSON body of a notification.
type alarmPayload struct {
	ID          string    `json:"id"`
	At          time.Time `json:"at"`
	Project     string    `json:"project"`
	Environment string    `json:"environment"`
	Service     string    `json:"service"`
	Alarm       alarmDef  `json:"alarm"`
	State       string    `json:"state"`
	Previous    string    `json:"previous"`
	Value       string    `json:"value,omitempty"`
	Message     string    `json:"message"`
}

// payloadJSON is a notification's body: JSON as written (">" stays ">").
func payloadJSON(p alarmPayload) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(p)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

// changed records an alarm's change as an event and, entering or leaving
// ALERT, queues a notification to each of its channels (a built-in
// alarm's: every channel of the project).
func (ev *evaluator) changed(ctx context.Context, ref target.ServiceRef, d alarmDef, was string, next *store.AlarmState) {
	if was == "" {
		was = AlarmOK
	}
	msg := fmt.Sprintf("alarm %s of %s: %s → %s", d.Name, ref, was, next.State)
	if next.Value != "" {
		msg += fmt.Sprintf(" (%s %s %s %g)", d.Metric, next.Value, d.Comparison, d.Threshold)
	}
	kind := map[string]string{AlarmOK: "alarm.ok", AlarmAlert: "alarm.alert", AlarmNoData: "alarm.no_data"}[next.State]
	ev.b.record(ctx, &store.ServiceEvent{At: next.Since, Kind: kind, Project: ref.Project, Environment: ref.Environment, Service: ref.Service,
		Actor: "runway", Target: "alarm " + d.Name, Message: msg})
	channels := d.Notify
	if d.Builtin {
		_, def, err := ev.b.loadProject(ctx, ref.Project)
		if err != nil {
			return
		}
		for _, n := range def.Notify {
			channels = append(channels, n.Name)
		}
	}
	for _, ch := range channels {
		n := &store.Notification{CreatedAt: next.Since, Project: ref.Project, Environment: ref.Environment, Service: ref.Service, Alarm: d.Name, Channel: ch}
		n.ID = store.NewID(n.CreatedAt)
		n.Payload = payloadJSON(alarmPayload{ID: n.ID, At: next.Since.UTC(), Project: ref.Project, Environment: ref.Environment, Service: ref.Service,
			Alarm: d, State: next.State, Previous: was, Value: next.Value, Message: msg})
		if err := ev.b.st.AddNotification(ctx, n); err != nil {
			ev.b.log.Warn("queue notification", "alarm", d.Name, "channel", ch, "err", err)
		}
	}
}

// alertsOf lists a service's alarms in ALERT as last evaluated (manifest
// and built-in), merged with the built-in ones computed now.
func (b *backend) alertsOf(ctx context.Context, ref target.ServiceRef, now []string) []string {
	seen := map[string]bool{}
	out := []string{}
	for _, n := range now {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	list, err := b.st.ListAlarmStates(ctx, store.AlarmFilter{Project: ref.Project, Environment: ref.Environment, Service: ref.Service})
	if err != nil {
		return out
	}
	for _, a := range list {
		if a.State == AlarmAlert && !seen[a.Name] {
			var d alarmDef
			_ = json.Unmarshal(a.Detail, &d)
			if d.Builtin {
				continue // what holds now was computed above
			}
			seen[a.Name] = true
			out = append(out, a.Name)
		}
	}
	return out
}

// Alarms implements api.Backend.
func (b *backend) Alarms(ctx context.Context, f apiwire.AlarmFilter) ([]apiwire.Alarm, error) {
	list, err := b.st.ListAlarmStates(ctx, store.AlarmFilter{Project: f.Project, Environment: f.Environment, Service: f.Service})
	if err != nil {
		return nil, err
	}
	out := make([]apiwire.Alarm, 0, len(list))
	for _, a := range list {
		var d alarmDef
		_ = json.Unmarshal(a.Detail, &d)
		out = append(out, apiwire.Alarm{Project: a.Project, Environment: a.Environment, Service: a.Service, Name: a.Name,
			Builtin: d.Builtin, Metric: d.Metric, Comparison: d.Comparison, Threshold: d.Threshold, For: d.For, Notify: d.Notify,
			State: a.State, Since: a.Since, Value: a.Value, Doc: d.Doc, UpdatedAt: a.UpdatedAt})
	}
	return out, nil
}

// Notifications implements api.Backend.
func (b *backend) Notifications(ctx context.Context, f apiwire.AlarmFilter) ([]apiwire.Notification, error) {
	list, err := b.st.ListNotifications(ctx, store.NotificationFilter{Project: f.Project, Environment: f.Environment, Service: f.Service, Limit: 100})
	if err != nil {
		return nil, err
	}
	out := make([]apiwire.Notification, 0, len(list))
	for _, n := range list {
		w := apiwire.Notification{ID: n.ID, CreatedAt: n.CreatedAt, Project: n.Project, Environment: n.Environment, Service: n.Service,
			Alarm: n.Alarm, Channel: n.Channel, State: n.State, Attempts: n.Attempts, LastError: n.LastError}
		if n.State == store.NotificationPending {
			t := n.NextAt
			w.NextAt = &t
		}
		if !n.DeliveredAt.IsZero() {
			t := n.DeliveredAt
			w.DeliveredAt = &t
		}
		out = append(out, w)
	}
	return out, nil
}
