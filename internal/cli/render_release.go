package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

func printPlan(w io.Writer, env, name, version string, current *apiwire.Release, changes []string) {
	if current == nil {
		fmt.Fprintf(w, "First release of %s to %s (version %s).\n", name, env, version)
		return
	}
	fmt.Fprintf(w, "Deploying %s to %s: %s → %s (running release %s)\n", name, env, current.Version, version, current.ID)
	if len(changes) == 0 {
		return
	}
	fmt.Fprintln(w, "Changes:")
	for _, c := range changes {
		fmt.Fprintf(w, "  %s\n", c)
	}
}

// progressLine sums up a service's groups and traffic split, such as
// "instances: v2 3/4 healthy, v1 3/3 healthy · traffic: v2 100%".
func progressLine(st *apiwire.ServiceStatus) string {
	count := map[string]int{}
	for _, gr := range st.Groups {
		count[gr.Version]++
	}
	label := map[string]string{}
	var inst []string
	for _, gr := range st.Groups {
		l := "v" + gr.Version
		if count[gr.Version] > 1 {
			l += " (" + gr.Name + ")"
		}
		label[gr.Name] = l
		inst = append(inst, fmt.Sprintf("%s %d/%d healthy", l, gr.Healthy, gr.Desired))
	}
	if len(inst) == 0 {
		inst = []string{"none"}
	}
	total := 0
	for _, r := range st.Routes {
		total += r.Weight
	}
	var traffic []string
	for _, r := range st.Routes {
		if r.Weight == 0 || total == 0 {
			continue
		}
		l, ok := label[r.Group]
		if !ok {
			l = r.Group
		}
		traffic = append(traffic, fmt.Sprintf("%s %d%%", l, r.Weight*100/total))
	}
	if len(traffic) == 0 {
		traffic = []string{"none"}
	}
	return "instances: " + strings.Join(inst, ", ") + " · traffic: " + strings.Join(traffic, ", ")
}

func printStatus(w io.Writer, st *apiwire.ServiceStatus) {
	if len(st.Alarms) > 0 {
		fmt.Fprintf(w, "%s in %s  ALERT: %s\n", st.Service, st.Environment, strings.Join(st.Alarms, ", "))
	} else {
		fmt.Fprintf(w, "%s in %s\n", st.Service, st.Environment)
	}
	for _, r := range st.FailureDirty {
		fmt.Fprintf(w, "  FAILURE DIRTY:    %s  version %s: %s (its clean-up is owed until a release succeeds)\n", r.ID, r.Version, r.Error)
	}
	if st.Current != nil {
		fmt.Fprintf(w, "  current release:  %s  version %s  (%s)\n", st.Current.ID, st.Current.Version, st.Current.State)
	} else if st.InProgress == nil && len(st.Routes) > 0 {
		fmt.Fprintln(w, "  current release:  none known to this server (the groups below serve)")
	} else {
		fmt.Fprintln(w, "  current release:  none")
	}
	if st.InProgress != nil {
		if st.InProgress.Runner != "" {
			fmt.Fprintf(w, "  in progress:      %s  version %s  (%s) on replica %s\n", st.InProgress.ID, st.InProgress.Version, st.InProgress.State, st.InProgress.Runner)
		} else {
			fmt.Fprintf(w, "  in progress:      %s  version %s  (%s)\n", st.InProgress.ID, st.InProgress.Version, st.InProgress.State)
		}
	}
	if st.StoreBehind != "" {
		fmt.Fprintf(w, "  STORE BEHIND:     %s\n", st.StoreBehind)
	}
	if st.Current == nil && st.InProgress == nil && len(st.Groups) == 0 {
		fmt.Fprintf(w, "  nothing runs; release it with: runway deploy %s --env %s\n", st.Service, st.Environment)
		return
	}
	weights := map[string]int{}
	total := 0
	for _, r := range st.Routes {
		weights[r.Group] = r.Weight
		total += r.Weight
	}
	fmt.Fprintf(w, "  %-36s %-10s %-9s %-8s\n", "GROUP", "VERSION", "HEALTHY", "TRAFFIC")
	for _, gr := range st.Groups {
		traffic := "0%"
		if total > 0 {
			traffic = fmt.Sprintf("%d%%", weights[gr.Name]*100/total)
		}
		fmt.Fprintf(w, "  %-36s %-10s %-9s %-8s\n", gr.Name, gr.Version, fmt.Sprintf("%d/%d", gr.Healthy, gr.Desired), traffic)
	}
}

// releaseTable prints one release (runway release show): who released what,
// its states with the time each took, and the requests it served.
func releaseTable(w io.Writer, rel *apiwire.ReleaseDetail) error {
	fmt.Fprintf(w, "release %s: %s %s to %s by %s at %s\n", rel.ID, rel.Service, rel.Version, rel.Environment,
		rel.CreatedBy, rel.CreatedAt.Local().Format(time.RFC3339))
	fmt.Fprintf(w, "state: %s", rel.State)
	if rel.Error != "" {
		fmt.Fprintf(w, " (%s: %s)", rel.ErrorKind, rel.Error)
	}
	fmt.Fprintln(w)
	if len(rel.Secrets) > 0 {
		var pins []string
		for _, p := range rel.Secrets {
			pins = append(pins, secretPinLabel(p))
		}
		fmt.Fprintf(w, "secrets: %s\n", strings.Join(pins, ", "))
	}
	var prev time.Time
	for _, e := range rel.Events {
		took := ""
		if !prev.IsZero() {
			took = "+" + e.At.Sub(prev).Round(time.Millisecond).String()
		}
		prev = e.At
		fmt.Fprintf(w, "  %s %9s  %-18s %s\n", e.At.Local().Format("15:04:05.000"), took, e.State, e.Message)
	}
	fmt.Fprintf(w, "served %s requests during the release, %s failed\n", groupDigits(rel.Served), groupDigits(rel.Failed))
	return nil
}

// releasesTable lists releases, one line each (runway releases).
func releasesTable(w io.Writer, list []*apiwire.Release) error {
	fmt.Fprintf(w, "%-26s  %-10s  %-14s  %-20s  %-12s  %s\n", "ID", "VERSION", "STATE", "CREATED", "BY", "SERVED/FAILED")
	for _, r := range list {
		fmt.Fprintf(w, "%-26s  %-10s  %-14s  %-20s  %-12s  %s/%s\n", r.ID, r.Version, r.State,
			r.CreatedAt.Local().Format("2006-01-02 15:04:05"), r.CreatedBy, groupDigits(r.Served), groupDigits(r.Failed))
	}
	return nil
}

// statusTable prints the status of the services of environment env
// (runway status), one block each.
func statusTable(w io.Writer, env string, all []*apiwire.ServiceStatus) error {
	if len(all) == 0 {
		fmt.Fprintf(w, "no service has been released to %s yet\n", env)
	}
	for i, st := range all {
		if i > 0 {
			fmt.Fprintln(w)
		}
		printStatus(w, st)
	}
	return nil
}

// eventLine prints one event of a release being followed.
func eventLine(w io.Writer, e apiwire.Event) {
	fmt.Fprintf(w, "%s  %-18s %s\n", e.At.Local().Format("15:04:05.000"), e.State, e.Message)
}

// progressRow prints a progressLine under the events, in their columns but
// without a time (it is when the CLI looked, not when the release acted).
func progressRow(w io.Writer, state, progress string) {
	fmt.Fprintf(w, "%12s  %-18s %s\n", "", state, progress)
}

// followedTable sums up a release that a follow saw end.
func followedTable(w io.Writer, last *apiwire.ReleaseDetail) error {
	fmt.Fprintf(w, "release %s: %s; served %s requests during the release, %s failed\n",
		last.ID, last.State, groupDigits(last.Served), groupDigits(last.Failed))
	return nil
}

// secretPinLabel is a pinned secret as release show prints it: "DATABASE_URL
// v4", "TOKEN=API_TOKEN v1 (environment-wide)" (versions, never values).
func secretPinLabel(p apiwire.SecretPin) string {
	name := p.Name
	if p.Key != p.Name {
		name += "=" + p.Key
	}
	l := fmt.Sprintf("%s v%d", name, p.Version)
	if p.Service == "" {
		l += " (environment-wide)"
	}
	return l
}
