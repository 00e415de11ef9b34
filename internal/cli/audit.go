package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
)

func newAuditCmd(g *Globals) *cobra.Command {
	var since time.Duration
	var actor, env string
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--actor NAME] [--env ENV]",
		Short: "List the audit log: who changed what, when, from where",
		Long: `Every change made through the API (allowed or refused) is an entry of the
server's audit log: time, actor, token id, source address, action, target,
the request's digest and the outcome. Entries are hash-chained; runway audit
verify recomputes the chain.`,
		Example: "  runway audit --since 24h\n  runway audit --actor ci --env production --output json\n  runway audit verify",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if since < 0 {
				return UsageErrorf("--since %s: want a positive duration such as 24h", since)
			}
			c, err := g.client()
			if err != nil {
				return err
			}
			f := apiwire.AuditFilter{Actor: actor, Environment: env, Limit: limit}
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			list, err := c.Audit(cmd.Context(), f)
			if err != nil {
				return err
			}
			return render(g, list, auditTable)
		},
	}
	cmd.Flags().DurationVar(&since, "since", 0, "only entries of the last DURATION, such as 24h")
	cmd.Flags().StringVar(&actor, "actor", "", "only entries of this user")
	cmd.Flags().StringVarP(&env, "env", "e", "", "only entries about this environment")
	cmd.Flags().IntVar(&limit, "limit", 1000, "at most this many entries (the newest)")
	verify := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the audit log's hash chain; exit 1 naming the first bad entry",
		Long: `Verify has the server recompute every entry's hash from the first one and
compare the newest with the chain's head, which the server also keeps in a
file beside its database: an edited, deleted or reordered entry, a dropped
trigger or a truncated table are all reported, naming the first bad entry.`,
		Example: "  runway audit verify\n  runway audit verify --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			rep, err := c.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if g.JSON() {
				if err := writeJSON(g, rep); err != nil {
					return err
				}
			} else if rep.OK {
				fmt.Fprintf(g.Stdout, "audit log intact: %d entries, chain head %d matches\n", rep.Entries, rep.HeadSeq)
			}
			if !rep.OK {
				if !g.JSON() {
					fmt.Fprintf(g.Stderr, "audit log TAMPERED: %s\n", rep.Problem)
				}
				return silentError{ExitFailure}
			}
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
