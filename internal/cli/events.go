package cli

import (
	"os"
	"os/signal"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newEventsCmd(g *Globals) *cobra.Command {
	var env, project, service, release string
	var follow bool
	var limit int
	cmd := &cobra.Command{
		Use:   "events [--env ENV] [--service S]",
		Short: "Show what happened: release steps, instances, scaling, halts, project applies",
		Long: `Events prints one line per event, oldest first: when, where, who (the user
who deployed, halted or applied, or the target for what instances did), what it
was done to, and what happened. --follow keeps printing new events until
Ctrl-C, and what a release in progress waits for as that changes. With
--output json each event is a JSON object (one per line when following).
Without --env it needs a role that reads every environment (read_only).`,
		Example: `  runway events --env staging
  runway events --env staging --service hello --follow`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > 1000 {
				return UsageErrorf("--limit %d: want 1 to 1000", limit)
			}
			if service != "" && env == "" {
				return UsageErrorf("--service needs --env")
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			project, err := projectName(cmd.Context(), c, project)
			if err != nil {
				return err
			}
			f := apiwire.EventFilter{Project: project, Environment: env, Service: service, Release: release, Limit: limit, Follow: follow}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if !follow {
				list := []apiwire.ServiceEvent{}
				if err := c.Events(ctx, f, func(e apiwire.ServiceEvent) error { list = append(list, e); return nil }); err != nil {
					return err
				}
				return render(g, list, eventsTable)
			}
			return c.Events(ctx, f, func(e apiwire.ServiceEvent) error {
				if g.JSON() {
					return writeJSONLine(g.Stdout, e)
				}
				eventRow(g.Stdout, e)
				return nil
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&env, "env", "e", "", "only this environment's events")
	fl.StringVarP(&service, "service", "s", "", "only this service's events (with --env)")
	fl.StringVar(&release, "release", "", "only this release's events")
	fl.BoolVarP(&follow, "follow", "f", false, "keep printing new events until Ctrl-C")
	fl.IntVar(&limit, "limit", 100, "how many of the newest events to print first")
	projectFlag(cmd, &project)
	return cmd
}
