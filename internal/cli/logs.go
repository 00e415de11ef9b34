package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
)

func newLogsCmd(g *Globals) *cobra.Command {
	var env, project, filter, since, instance, release string
	var follow bool
	var tail int
	cmd := &cobra.Command{
		Use:   "logs SERVICE --env ENV",
		Short: "Show what a service's instances wrote, merged in time order",
		Long: `Logs prints the lines of every instance of the service, merged in time
order, each prefixed with the instance's short id and how long ago it was
written. --follow keeps printing new lines until Ctrl-C, also of the
instances a deploy starts. --release reads the instances of one release,
also after it ended (a failed release's last words are kept).
With --output json each line is a JSON object (one per line when following).`,
		Example: `  runway logs hello --env staging
  runway logs hello --env staging --follow --filter error
  runway logs hello --env staging --since 10m --instance a58980c1
  runway logs hello --env staging --release 01JD3Q8Y7Z5W2X4V6T8R0P2N4A`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			q := apiwire.LogsQuery{Environment: env, Service: args[0], Filter: filter, Instance: instance, Release: release, Tail: tail, Follow: follow}
			if since != "" {
				t, err := parseSinceFlag(since, time.Now())
				if err != nil {
					return UsageErrorf("--since %q: want a duration back from now such as 10m or 2h, or an RFC 3339 time", since)
				}
				q.Since = t
			}
			if tail < 0 {
				return UsageErrorf("--tail %d: want 0 (every line) or more", tail)
			}
			c, project, err := serviceScope(cmd.Context(), g, env, project)
			if err != nil {
				return err
			}
			q.Project = project
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			if !follow {
				var lines []apiwire.LogLine
				if err := c.Logs(ctx, q, func(l apiwire.LogLine) error { lines = append(lines, l); return nil }); err != nil {
					return err
				}
				if lines == nil {
					lines = []apiwire.LogLine{}
				}
				return render(g, lines, func(w io.Writer, lines []apiwire.LogLine) error {
					return logLines(w, lines, time.Now(), g.Color())
				})
			}
			pr := newLogPrinter(g)
			err = c.Logs(ctx, q, pr.line)
			if errors.Is(err, client.ErrStreamEnded) {
				if release != "" {
					return nil // the release's group is gone and read to its end
				}
				return fmt.Errorf("the server ended the stream (did it stop?); follow again with: runway logs %s --env %s --follow", args[0], env)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVarP(&env, "env", "e", "", "environment (required)")
	f.BoolVarP(&follow, "follow", "f", false, "keep printing new lines until Ctrl-C")
	f.StringVar(&filter, "filter", "", "only lines whose instance id or text contains TEXT")
	f.StringVar(&since, "since", "", "only lines newer than this: a duration back from now (10m) or an RFC 3339 time")
	f.StringVar(&instance, "instance", "", "only this instance's lines")
	f.StringVar(&release, "release", "", "the instances of this release (also after it ended)")
	f.IntVar(&tail, "tail", 100, "the last N lines (0: every line)")
	projectFlag(cmd, &project)
	return cmd
}

// parseSinceFlag reads --since: a positive duration back from now, or an
// RFC 3339 time.
func parseSinceFlag(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		if d <= 0 {
			return time.Time{}, errNotPositive
		}
		return now.Add(-d), nil
	}
	return time.Parse(time.RFC3339, s)
}

var errNotPositive = errors.New("not positive")

// logPrinter prints followed lines as they come (JSON: one object a line).
type logPrinter struct {
	g     *Globals
	color bool
}

func newLogPrinter(g *Globals) *logPrinter { return &logPrinter{g: g, color: g.Color()} }

func (p *logPrinter) line(l apiwire.LogLine) error {
	if p.g.JSON() {
		return writeJSONLine(p.g.Stdout, l)
	}
	return logLine(p.g.Stdout, l, time.Now(), p.color)
}
