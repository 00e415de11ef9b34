package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/server"
	"github.com/runwayhq/runway/internal/store"
)

func newServerMigrateCmd(g *Globals) *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --from DATA_DIR --to postgres://...",
		Short: "Copy a stopped embedded server's state (SQLite) into a new PostgreSQL database",
		Long: `Copy everything a server keeps in DATA_DIR/runway.db (releases and their
events, projects, users and token hashes, the audit log, sealed secrets,
alarms, agent generations) into an empty PostgreSQL database, in one
transaction, so that several servers can share it (runway server --store).
The server must be stopped. The audit chain is verified before the copy
and again on the copy; row counts must match. DATA_DIR is only read: to go
back, stop the servers on PostgreSQL and start the server without --store
(changes made on PostgreSQL since are not in DATA_DIR). The master key is
not in the database: start the servers on the new store with the same key
(RUNWAY_MASTER_KEY, or DATA_DIR/master.key). See docs/operations.md,
"Running several servers".`,
		Example: `  runway server migrate --from /var/lib/runway/server --to postgres://runway:PASSWORD@db:5432/runway
  RUNWAY_STORE=postgres://runway:PASSWORD@db:5432/runway runway server --data-dir /var/lib/runway/server`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				to = os.Getenv("RUNWAY_STORE")
			}
			if from == "" || to == "" {
				return UsageErrorf("give --from DATA_DIR (the stopped server's data dir) and --to postgres://... (a new, empty database)")
			}
			if !store.IsPostgresURL(to) {
				return UsageErrorf("--to %s: want a postgres:// URL (postgres://USER:PASSWORD@HOST:PORT/DATABASE)", store.RedactURL(to))
			}
			rep, err := server.Migrate(cmd.Context(), from, to)
			if err != nil {
				return err
			}
			if g.JSON() {
				return writeJSON(g, map[string]any{"rows": rep.Rows, "audit_entries": rep.AuditEntries, "master_keys": rep.KeyIDs})
			}
			fmt.Fprintf(g.Stdout, "copied %s to %s\n", filepath.Join(from, server.DatabaseFile), store.RedactURL(to))
			var tables []string
			for t := range rep.Rows {
				tables = append(tables, t)
			}
			slices.Sort(tables)
			for _, t := range tables {
				fmt.Fprintf(g.Stdout, "  %-18s %d rows\n", t, rep.Rows[t])
			}
			fmt.Fprintf(g.Stdout, "audit chain verified before and after the copy: %d entries\n", rep.AuditEntries)
			if len(rep.KeyIDs) > 0 {
				fmt.Fprintf(g.Stdout, "secrets are sealed under master key %s: start every server on the new store with it (RUNWAY_MASTER_KEY, or %s)\n",
					strings.Join(rep.KeyIDs, ", "), filepath.Join(from, "master.key"))
			}
			fmt.Fprintf(g.Stdout, "next: runway server --data-dir %s --store %s\n", from, store.RedactURL(to))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "data dir of the stopped server whose state is copied")
	cmd.Flags().StringVar(&to, "to", "", "postgres:// URL of the new, empty database (default $RUNWAY_STORE)")
	return cmd
}
