package cli

import (
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newAlarmsCmd(g *Globals) *cobra.Command {
	var env, project, service string
	var deliveries bool
	cmd := &cobra.Command{
		Use:   "alarms [--env ENV] [--service S]",
		Short: "List alarms and their states (OK, ALERT, NO_DATA), or their notifications",
		Long: `Alarms lists every alarm of the services (the alarm blocks of their manifests
and the built-in ones: release_failure_dirty, no_healthy_instance,
instance_crash_looping) with its state as the server last evaluated it (every
10 s), its value and since when. --deliveries lists the newest webhook
notifications instead: channel, state (pending, delivered, failed), attempts,
last error.`,
		Example: `  runway alarms --env production
  runway alarms --env production --deliveries`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
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
			f := apiwire.AlarmFilter{Project: project, Environment: env, Service: service}
			if deliveries {
				list, err := c.Notifications(cmd.Context(), f)
				if err != nil {
					return err
				}
				return render(g, list, notificationsTable)
			}
			list, err := c.Alarms(cmd.Context(), f)
			if err != nil {
				return err
			}
			return render(g, list, alarmsTable)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&env, "env", "e", "", "only this environment's alarms")
	fl.StringVarP(&service, "service", "s", "", "only this service's alarms (with --env)")
	fl.BoolVar(&deliveries, "deliveries", false, "list the newest webhook notifications instead")
	projectFlag(cmd, &project)
	return cmd
}
