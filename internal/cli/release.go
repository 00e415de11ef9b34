package cli

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
)

func init() {
	register(newDeployCmd)
	register(newStatusCmd)
	register(newReleasesCmd)
	register(newReleaseCmd)
	register(newRollbackCmd)
	register(newHaltCmd)
}

func newRequestID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }

// Final release states.
const (
	stateSuccess      = "Success"
	stateFailureClean = "FailureClean"
	stateFailureDirty = "FailureDirty"
)

func newDeployCmd(g *Globals) *cobra.Command {
	var env, file, version string
	var yes, wait bool
	cmd := &cobra.Command{
		Use:   "deploy [SERVICE] --env ENV",
		Short: "Release a service to an environment with zero downtime",
		Long: `Deploy resolves the service's manifest for the environment, shows what changes
against the running release, asks for confirmation (unless --yes) and submits a
release. With --wait it follows the release step by step and exits 0 only when
the new version serves all traffic.`,
		Example: `  runway deploy --env staging --yes --wait
  runway deploy hello --env production --version 1.4.0 --file examples/hello/hello.service.hcl`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required: name the environment, such as --env staging")
			}
			paths := []string{"."}
			if file != "" {
				paths = []string{file}
			}
			ws, err := loadWorkspaceWarn(g, paths, true)
			if err != nil {
				return err
			}
			name, err := pickService(ws, args, file)
			if err != nil {
				return err
			}
			svc, diags := ws.Resolve(name, env)
			if diags.HasErrors() {
				_ = config.WriteDiagnostics(g.Stderr, ws.Files(), diags, g.Color())
				return silentError{ExitFailure}
			}
			if version != "" {
				if err := config.CheckVersion(version); err != nil {
					return UsageErrorf("--version: %v", err)
				}
				svc.Version = version
			}
			if svc.Version == "" {
				return UsageErrorf("service %q has no version: set version in its manifest or pass --version", name)
			}
			manifest, err := json.Marshal(svc)
			if err != nil {
				return err
			}
			sources, files, err := requestSources(ws, ws.Service(name))
			if err != nil {
				return err
			}
			projectSource, err := os.ReadFile(ws.Project.File)
			if err != nil {
				return err
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := c.Status(ctx, ws.Project.Name, env, name)
			if err != nil {
				return err
			}
			changes := diffManifests(st.Current, manifest)
			if !g.JSON() {
				printPlan(g.Stdout, env, name, svc.Version, st.Current, changes)
			}
			if !yes {
				if st.Current != nil && len(changes) == 0 {
					fmt.Fprintln(g.Stdout, "nothing changed; deploying anyway makes a new release of the same manifest")
				}
				ok, err := confirm(g, fmt.Sprintf("Deploy %s %s to %s?", name, svc.Version, env))
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("deploy cancelled")
				}
			}
			// The server parses and validates the sources itself, against
			// its own copy of the project; Dir is where commands live on
			// this machine (the local target runs them here).
			rel, err := c.Deploy(ctx, apiwire.DeployRequest{
				Project: ws.Project.Name, Environment: env, Service: name, Version: version,
				Sources: sources, ProjectSource: string(projectSource), Dir: svc.Dir,
				RequestID: newRequestID(), RequestedAt: time.Now().UTC(),
				// Asked above, or --yes: protected environments need it.
				Confirmed: true,
			})
			if err != nil {
				return serverDiagnostics(g, err, files)
			}
			if !wait {
				if g.JSON() {
					return writeJSON(g, rel)
				}
				fmt.Fprintf(g.Stdout, "release %s submitted (%s %s to %s); follow it with: runway release show %s --wait\n", rel.ID, name, rel.Version, env, rel.ID)
				return nil
			}
			return followRelease(ctx, g, c, rel.ID)
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment to deploy to (required)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "service manifest (default: the one in the current directory)")
	cmd.Flags().StringVar(&version, "version", "", "version to release (default: the manifest's version)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the release and exit 0 only on success")
	return cmd
}

// pickService chooses the service to deploy: the argument, or the only
// service in the given file or current directory.
func pickService(ws *config.Workspace, args []string, file string) (string, error) {
	if len(args) == 1 {
		if ws.Service(args[0]) == nil {
			return "", fmt.Errorf("no manifest defines service %q; found %s", args[0], strings.Join(serviceNames(ws), ", "))
		}
		return args[0], nil
	}
	var local []string
	for _, s := range ws.Services {
		if file != "" || filepath.Dir(s.File) == "." {
			local = append(local, s.Name)
		}
	}
	if len(local) == 0 {
		local = serviceNames(ws)
	}
	if len(local) != 1 {
		return "", UsageErrorf("name the service to deploy: found %s", strings.Join(local, ", "))
	}
	return local[0], nil
}

// diffManifests lists changed fields between the running release's manifest
// and the new one (config.Diff), leaving out where the files are.
func diffManifests(current *apiwire.Release, next []byte) []string {
	var old []byte
	if current != nil {
		old = current.Manifest
	}
	return config.Diff(old, next, "dir", "file")
}

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

// confirm asks a yes/no question on stdin; without a terminal it refuses so
// scripts must pass --yes.
func confirm(g *Globals, question string) (bool, error) {
	if f, ok := g.Stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice == 0 {
			return false, UsageErrorf("cannot ask %q without a terminal; pass --yes to go ahead without confirmation", question)
		}
	}
	fmt.Fprintf(g.Stdout, "%s [y/N] ", question)
	line, err := bufio.NewReader(g.Stdin).ReadString('\n')
	if err != nil && line == "" {
		return false, UsageErrorf("%s: no answer; pass --yes to skip confirmation", question)
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// followRelease prints a release's events as they happen until it ends.
func followRelease(ctx context.Context, g *Globals, c *client.Client, id string) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt)
	defer stop()
	seen := 0
	var last *apiwire.ReleaseDetail
	lastProgress := ""
	for {
		rel, err := c.Release(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				stoppedFollowing(g, id, last)
				return silentError{ExitFailure}
			}
			return err
		}
		last = rel
		if !g.JSON() {
			for _, e := range rel.Events[seen:] {
				fmt.Fprintf(g.Stdout, "%s  %-18s %s\n", e.At.Local().Format("15:04:05.000"), e.State, e.Message)
			}
			// Live progress: what runs and where traffic goes, printed
			// when it changes. Status is best effort: a failure to read
			// it must not end the follow. No timestamp: it is when the
			// CLI looked, not when the release did something, and would
			// interleave out of order with the events' times.
			if st, err := c.Status(ctx, rel.Project, rel.Environment, rel.Service); err == nil {
				if p := progressLine(st); p != lastProgress {
					fmt.Fprintf(g.Stdout, "%12s  %-18s %s\n", "", rel.State, p)
					lastProgress = p
				}
			}
		}
		seen = len(rel.Events)
		if rel.Done {
			break
		}
		select {
		case <-ctx.Done():
			stoppedFollowing(g, id, last)
			return silentError{ExitFailure}
		case <-time.After(300 * time.Millisecond):
		}
	}
	if g.JSON() {
		if err := writeJSON(g, last); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(g.Stdout, "release %s: %s; served %s requests during the release, %s failed\n",
			last.ID, last.State, groupDigits(last.Served), groupDigits(last.Failed))
	}
	if last.State != stateSuccess {
		msg := fmt.Sprintf("release %s ended in %s", last.ID, last.State)
		if last.Error != "" {
			msg += ": " + last.Error
		}
		return errors.New(msg)
	}
	return nil
}

// stoppedFollowing tells what goes on after Ctrl-C ends a follow: the
// release does, and how to halt or follow it again.
func stoppedFollowing(g *Globals, id string, last *apiwire.ReleaseDetail) {
	halt := "runway halt SERVICE --env ENV"
	if last != nil {
		halt = fmt.Sprintf("runway halt %s --env %s", last.Service, last.Environment)
	}
	fmt.Fprintf(g.Stderr, "stopped following; release %s goes on. Follow it again with: runway release show %s --wait; halt it with: %s\n", id, id, halt)
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

// groupDigits formats 18342 as "18,342".
func groupDigits(n int64) string {
	s := fmt.Sprintf("%d", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func newStatusCmd(g *Globals) *cobra.Command {
	var env, project string
	cmd := &cobra.Command{
		Use:     "status [SERVICE] --env ENV",
		Short:   "Show what runs: groups, versions, health, traffic, release in progress",
		Example: "  runway status --env staging\n  runway status hello --env staging --output json",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			project, err := projectName(cmd.Context(), c, project)
			if err != nil {
				return err
			}
			services := args
			if len(services) == 0 {
				// Every service with a release in the environment.
				list, err := c.Releases(cmd.Context(), apiwire.ReleaseFilter{Project: project, Environment: env, Limit: 1000})
				if err != nil {
					return err
				}
				seen := map[string]bool{}
				for _, r := range list {
					if !seen[r.Service] {
						seen[r.Service] = true
						services = append(services, r.Service)
					}
				}
				sort.Strings(services)
			}
			var all []*apiwire.ServiceStatus
			for _, svc := range services {
				st, err := c.Status(cmd.Context(), project, env, svc)
				if err != nil {
					return err
				}
				all = append(all, st)
			}
			if g.JSON() {
				if len(args) == 1 {
					return writeJSON(g, all[0])
				}
				if all == nil {
					all = []*apiwire.ServiceStatus{}
				}
				return writeJSON(g, all)
			}
			if len(all) == 0 {
				fmt.Fprintf(g.Stdout, "no service has been released to %s yet\n", env)
			}
			for i, st := range all {
				if i > 0 {
					fmt.Fprintln(g.Stdout)
				}
				printStatus(g.Stdout, st)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	projectFlag(cmd, &project)
	return cmd
}

// projectFlag adds --project: the project a command is about (default: the
// current directory's, or the server's only project).
func projectFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVarP(p, "project", "p", "", "project (default: the one of runway.hcl in this directory or a parent, or the server's only project)")
}

func printStatus(w io.Writer, st *apiwire.ServiceStatus) {
	fmt.Fprintf(w, "%s in %s\n", st.Service, st.Environment)
	if st.Current != nil {
		fmt.Fprintf(w, "  current release:  %s  version %s  (%s)\n", st.Current.ID, st.Current.Version, st.Current.State)
	} else if st.InProgress == nil && len(st.Routes) > 0 {
		fmt.Fprintln(w, "  current release:  none known to this server (the groups below serve)")
	} else {
		fmt.Fprintln(w, "  current release:  none")
	}
	if st.InProgress != nil {
		fmt.Fprintf(w, "  in progress:      %s  version %s  (%s)\n", st.InProgress.ID, st.InProgress.Version, st.InProgress.State)
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

func newReleasesCmd(g *Globals) *cobra.Command {
	var env, project string
	var limit int
	cmd := &cobra.Command{
		Use:     "releases SERVICE --env ENV",
		Short:   "List a service's releases, newest first",
		Example: "  runway releases hello --env staging",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			project, err := projectName(cmd.Context(), c, project)
			if err != nil {
				return err
			}
			list, err := c.Releases(cmd.Context(), apiwire.ReleaseFilter{Project: project, Environment: env, Service: args[0], Limit: limit})
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, list)
			}
			fmt.Fprintf(g.Stdout, "%-26s  %-10s  %-14s  %-20s  %-12s  %s\n", "ID", "VERSION", "STATE", "CREATED", "BY", "SERVED/FAILED")
			for _, r := range list {
				fmt.Fprintf(g.Stdout, "%-26s  %-10s  %-14s  %-20s  %-12s  %s/%s\n", r.ID, r.Version, r.State,
					r.CreatedAt.Local().Format("2006-01-02 15:04:05"), r.CreatedBy, groupDigits(r.Served), groupDigits(r.Failed))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().IntVar(&limit, "limit", 20, "how many releases to list")
	projectFlag(cmd, &project)
	return cmd
}

func newReleaseCmd(g *Globals) *cobra.Command {
	var wait bool
	cmd := &cobra.Command{Use: "release", Short: "Inspect one release"}
	show := &cobra.Command{
		Use:   "show ID",
		Short: "Show a release: its states with timings and the traffic it served",
		Long: `Show prints a release's record: who released what and when, its states with
timings and the requests served and failed while it ran. With --wait it
follows a release still running, as "runway deploy --wait" does, and exits 0
only if it succeeds.`,
		Example: "  runway release show 01JD3Q8Y7Z5W2X4V6T8R0P2N4M\n  runway release show 01JD3Q8Y7Z5W2X4V6T8R0P2N4M --wait",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			if wait {
				return followRelease(cmd.Context(), g, c, args[0])
			}
			rel, err := c.Release(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, rel)
			}
			fmt.Fprintf(g.Stdout, "release %s: %s %s to %s by %s at %s\n", rel.ID, rel.Service, rel.Version, rel.Environment,
				rel.CreatedBy, rel.CreatedAt.Local().Format(time.RFC3339))
			fmt.Fprintf(g.Stdout, "state: %s", rel.State)
			if rel.Error != "" {
				fmt.Fprintf(g.Stdout, " (%s: %s)", rel.ErrorKind, rel.Error)
			}
			fmt.Fprintln(g.Stdout)
			var prev time.Time
			for _, e := range rel.Events {
				took := ""
				if !prev.IsZero() {
					took = "+" + e.At.Sub(prev).Round(time.Millisecond).String()
				}
				prev = e.At
				fmt.Fprintf(g.Stdout, "  %s %9s  %-18s %s\n", e.At.Local().Format("15:04:05.000"), took, e.State, e.Message)
			}
			fmt.Fprintf(g.Stdout, "served %s requests during the release, %s failed\n", groupDigits(rel.Served), groupDigits(rel.Failed))
			return nil
		},
	}
	show.Flags().BoolVarP(&wait, "wait", "w", false, "follow the release until it ends; exit 0 only on success")
	cmd.AddCommand(show)
	return cmd
}

func newRollbackCmd(g *Globals) *cobra.Command {
	var env, to, project string
	var wait, yes bool
	cmd := &cobra.Command{
		Use:   "rollback SERVICE --env ENV [--to RELEASE]",
		Short: "Release an earlier version again (the previous successful release by default)",
		Long: `Rollback makes a new release from an earlier one of the service (or, inside a
blue/green scale_down_delay, switches the traffic straight back). A rollback
in a protected environment needs a confirmation: runway asks, or takes --yes.`,
		Example: "  runway rollback hello --env staging\n  runway rollback hello --env production --to 01JD3Q8Y7Z5W2X4V6T8R0P2N4M --yes --wait",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			project, err := projectName(cmd.Context(), c, project)
			if err != nil {
				return err
			}
			req := apiwire.RollbackRequest{Project: project, Environment: env, Service: args[0], To: to, RequestID: newRequestID(), RequestedAt: time.Now().UTC(), Confirmed: yes}
			rel, err := c.Rollback(cmd.Context(), req)
			if client.IsKind(err, "ConfirmationRequired") && !yes {
				// A protected environment: ask, and send a new request.
				ok, cerr := confirm(g, fmt.Sprintf("%s is protected. Roll back %s in %s?", env, args[0], env))
				if cerr != nil {
					return cerr
				}
				if !ok {
					return errors.New("rollback cancelled")
				}
				req.RequestID, req.RequestedAt, req.Confirmed = newRequestID(), time.Now().UTC(), true
				rel, err = c.Rollback(cmd.Context(), req)
			}
			if err != nil {
				return serverDiagnostics(g, err, nil)
			}
			if rel.SwitchBack {
				return followSwitchBack(cmd.Context(), g, c, rel, wait)
			}
			if wait {
				return followRelease(cmd.Context(), g, c, rel.ID)
			}
			if g.JSON() {
				return writeJSON(g, rel)
			}
			fmt.Fprintf(g.Stdout, "rollback release %s submitted (%s %s in %s)\n", rel.ID, rel.Service, rel.Version, env)
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().StringVar(&to, "to", "", "release id to return to (default: the previous successful release)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "confirm a rollback in a protected environment without asking")
	cmd.Flags().BoolVarP(&wait, "wait", "w", false, "follow the release and exit 0 only on success")
	projectFlag(cmd, &project)
	return cmd
}

func newHaltCmd(g *Globals) *cobra.Command {
	var env, reason, project string
	cmd := &cobra.Command{
		Use:     "halt SERVICE --env ENV",
		Short:   "Stop the running release of a service at its next step and roll it back",
		Example: "  runway halt hello --env production --reason 'wrong build'",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			project, err := projectName(cmd.Context(), c, project)
			if err != nil {
				return err
			}
			st, err := c.Status(cmd.Context(), project, env, args[0])
			if err != nil {
				return err
			}
			if st.InProgress == nil {
				return fmt.Errorf("no release of %s is running in %s", args[0], env)
			}
			if err := c.Halt(cmd.Context(), st.InProgress.ID, reason); err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, map[string]string{"id": st.InProgress.ID, "status": "halt requested"})
			}
			fmt.Fprintf(g.Stdout, "halt requested for release %s; it stops at its next step and rolls back\n", st.InProgress.ID)
			return nil
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().StringVar(&reason, "reason", "", "why, for the release record")
	projectFlag(cmd, &project)
	return cmd
}

// followSwitchBack reports an instant rollback: release rel was halted inside
// its scale_down_delay, which switches the traffic back to the release that
// served before it (rel.RollbackOf).
func followSwitchBack(ctx context.Context, g *Globals, c *client.Client, rel *apiwire.Release, wait bool) error {
	if !wait {
		if g.JSON() {
			return writeJSON(g, rel)
		}
		fmt.Fprintf(g.Stdout, "release %s is inside its scale_down_delay: switching back to release %s; follow it with: runway release show %s\n", rel.ID, rel.RollbackOf, rel.ID)
		return nil
	}
	err := followRelease(ctx, g, c, rel.ID)
	if err == nil {
		// The halt came after the window closed: the release retired the
		// previous version and ended Success.
		return fmt.Errorf("release %s had already retired release %s when the rollback arrived; run runway rollback again to release it anew", rel.ID, rel.RollbackOf)
	}
	last, gerr := c.Release(ctx, rel.ID)
	if gerr != nil {
		return gerr
	}
	if last.State != stateFailureClean || last.ErrorKind != "Halted" {
		return err
	}
	if !g.JSON() {
		fmt.Fprintf(g.Stdout, "rolled back: release %s serves again\n", rel.RollbackOf)
	}
	return nil
}
