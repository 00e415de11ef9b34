package cli

import (
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"
)

// topInterval is how often runway top redraws.
const topInterval = 2 * time.Second

func newTopCmd(g *Globals) *cobra.Command {
	var env, project string
	var once bool
	cmd := &cobra.Command{
		Use:   "top --env ENV",
		Short: "Live view of an environment: versions, traffic, health, requests, errors, latency, CPU, memory",
		Long: `Top redraws every 2 s, per service: its versions and their traffic split,
instances healthy of total, requests per second, error %, p50 and p99 latency
over the last 30 s, CPU, memory and restarts of its instances, and its alarms
in ALERT. --once prints one frame and exits (for scripts; with --output json
the frame's data).`,
		Example: `  runway top --env staging
  runway top --env staging --once --output json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, project, err := serviceScope(cmd.Context(), g, env, project)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			clear := g.Color() // a terminal: redraw in place
			for {
				o, err := c.Overview(ctx, project, env)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				if once {
					return render(g, o, topFrame)
				}
				if g.JSON() {
					if err := writeJSONLine(g.Stdout, o); err != nil {
						return err
					}
				} else {
					if clear {
						fmt.Fprint(g.Stdout, "\x1b[H\x1b[2J")
					}
					if err := topFrame(g.Stdout, o); err != nil {
						return err
					}
					if !clear {
						fmt.Fprintln(g.Stdout)
					}
				}
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(topInterval):
				}
			}
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "environment (required)")
	cmd.Flags().BoolVar(&once, "once", false, "print one frame and exit")
	projectFlag(cmd, &project)
	return cmd
}
