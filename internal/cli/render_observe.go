package cli

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// writeJSONLine prints v as one line of JSON (followed streams: one object
// a line, so a reader can act on each as it comes).
func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

// shortID is an instance's id as logs print it: its first 6 characters.
func shortID(id string) string {
	if len(id) > 6 {
		return id[:6]
	}
	return id
}

// ago says how long before now t was: "just now", "2 minutes ago".
func ago(t, now time.Time) string {
	d := now.Sub(t)
	unit := func(n int64, one string) string {
		if n == 1 {
			return "1 " + one + " ago"
		}
		return fmt.Sprintf("%d %ss ago", n, one)
	}
	switch {
	case d < time.Second:
		return "just now"
	case d < time.Minute:
		return unit(int64(d/time.Second), "second")
	case d < time.Hour:
		return unit(int64(d/time.Minute), "minute")
	case d < 48*time.Hour:
		return unit(int64(d/time.Hour), "hour")
	}
	return unit(int64(d/(24*time.Hour)), "day")
}

// instanceColors are the ANSI colours instances' prefixes cycle through.
var instanceColors = []string{"31", "32", "33", "34", "35", "36"}

// logLine prints `[a58980] :: 2 minutes ago :: GET / 200 43µs`, the
// prefix coloured by instance on a terminal.
func logLine(w io.Writer, l apiwire.LogLine, now time.Time, color bool) error {
	prefix := "[" + shortID(l.Instance) + "]"
	if color {
		h := fnv.New32a()
		h.Write([]byte(l.Instance))
		prefix = "\x1b[" + instanceColors[h.Sum32()%uint32(len(instanceColors))] + "m" + prefix + "\x1b[0m"
	}
	_, err := fmt.Fprintf(w, "%s :: %s :: %s\n", prefix, ago(l.Time, now), l.Text)
	return err
}

// logLines prints lines read at once (runway logs without --follow).
func logLines(w io.Writer, lines []apiwire.LogLine, now time.Time, color bool) error {
	for _, l := range lines {
		if err := logLine(w, l, now, color); err != nil {
			return err
		}
	}
	return nil
}

// eventsTable prints events, one line each: time, where, actor, target, what.
func eventsTable(w io.Writer, events []apiwire.ServiceEvent) error {
	if len(events) == 0 {
		fmt.Fprintln(w, "no events yet")
	}
	for _, e := range events {
		eventRow(w, e)
	}
	return nil
}

// eventRow is one line of runway events.
func eventRow(w io.Writer, e apiwire.ServiceEvent) {
	where := e.Environment + "/" + e.Service
	if e.Service == "" {
		where = e.Project
	}
	what := e.Message
	switch {
	case e.Kind == "wait":
		what = "waiting: " + what
	case e.Kind == "release" && e.State != "":
		what = "[" + e.State + "] " + what
	}
	fmt.Fprintf(w, "%s  %-16s %-10s %-36s %s\n", e.At.Local().Format("2006-01-02 15:04:05"), where, e.Actor, e.Target, what)
}

// topFrame prints one frame of runway top.
func topFrame(w io.Writer, o *apiwire.Overview) error {
	fmt.Fprintf(w, "%s in %s · %s · statistics over %s\n", o.Project, o.Environment, o.At.Local().Format("2006-01-02 15:04:05"), o.Window)
	if len(o.Services) == 0 {
		fmt.Fprintf(w, "no service has been released to %s yet\n", o.Environment)
		return nil
	}
	fmt.Fprintf(w, "%-16s %-28s %-8s %7s %6s %8s %8s %6s %8s %8s  %s\n", "SERVICE", "VERSIONS", "HEALTHY", "REQ/S", "ERR%", "P50", "P99", "CPU", "MEM", "RESTARTS", "ALARMS")
	for _, s := range o.Services {
		var vs []string
		for _, v := range s.Versions {
			vs = append(vs, fmt.Sprintf("v%s %d%%", v.Version, v.Weight))
		}
		versions := strings.Join(vs, ", ")
		if versions == "" {
			versions = "-"
		}
		if s.InProgress != "" {
			versions += " (" + s.InProgress + ")"
		}
		alarms := "-"
		if len(s.Alarms) > 0 {
			alarms = "ALERT " + strings.Join(s.Alarms, ", ")
		}
		fmt.Fprintf(w, "%-16s %-28s %-8s %7.1f %5.1f%% %8s %8s %5.1f%% %8s %8d  %s\n", s.Service, versions,
			fmt.Sprintf("%d/%d", s.Healthy, s.Total), s.RequestsPerSecond, 100*s.ErrorRate,
			seconds(s.P50Seconds), seconds(s.P99Seconds), s.CPUPercent, humanBytes(s.RSSBytes), s.Restarts, alarms)
	}
	return nil
}

// seconds prints a latency: "-" without requests, else rounded to what
// reads well ("850µs", "12ms", "1.2s").
func seconds(s float64) string {
	if s <= 0 {
		return "-"
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// alarmsTable lists alarms, one line each (runway alarms).
func alarmsTable(w io.Writer, list []apiwire.Alarm) error {
	if len(list) == 0 {
		fmt.Fprintln(w, "no alarm evaluated yet (the server evaluates every live service's alarms every 10 s)")
		return nil
	}
	fmt.Fprintf(w, "%-16s %-24s %-8s %-10s %-20s %s\n", "SERVICE", "ALARM", "STATE", "VALUE", "SINCE", "CONDITION")
	for _, a := range list {
		cond := a.Doc
		if !a.Builtin {
			cond = fmt.Sprintf("%s %s %g for %s", a.Metric, a.Comparison, a.Threshold, a.For)
		}
		value := a.Value
		if value == "" {
			value = "-"
		}
		fmt.Fprintf(w, "%-16s %-24s %-8s %-10s %-20s %s\n", a.Environment+"/"+a.Service, a.Name, a.State, value, a.Since.Local().Format("2006-01-02 15:04:05"), cond)
	}
	return nil
}

// notificationsTable lists webhook deliveries (runway alarms --deliveries).
func notificationsTable(w io.Writer, list []apiwire.Notification) error {
	if len(list) == 0 {
		fmt.Fprintln(w, "no notification sent yet")
		return nil
	}
	fmt.Fprintf(w, "%-20s %-16s %-24s %-10s %-10s %-8s %s\n", "CREATED", "SERVICE", "ALARM", "CHANNEL", "STATE", "ATTEMPTS", "LAST ERROR")
	for _, n := range list {
		last := n.LastError
		if last == "" {
			last = "-"
		}
		fmt.Fprintf(w, "%-20s %-16s %-24s %-10s %-10s %-8d %s\n", n.CreatedAt.Local().Format("2006-01-02 15:04:05"), n.Environment+"/"+n.Service,
			n.Alarm, n.Channel, n.State, n.Attempts, last)
	}
	return nil
}
