package cli

import (
	"fmt"
	"io"

	"github.com/runwayhq/runway/internal/apiwire"
)

// projectsTable lists the projects the server holds (runway project list).
func projectsTable(w io.Writer, ps []*apiwire.Project) error {
	fmt.Fprintf(w, "%-24s  %-7s  %-12s  %s\n", "PROJECT", "VERSION", "APPLIED BY", "APPLIED")
	for _, p := range ps {
		fmt.Fprintf(w, "%-24s  %-7d  %-12s  %s\n", p.Name, p.Version, p.UpdatedBy, p.UpdatedAt.Local().Format("2006-01-02 15:04:05"))
	}
	return nil
}

// contextRow is one context of runway context list; Token says where the
// token is, never what it is.
type contextRow struct {
	Name    string `json:"name"`
	Current bool   `json:"current"`
	Server  string `json:"server"`
	Token   string `json:"token"`
}

// contextsTable lists the contexts of config.toml, the current one marked *
// (runway context list).
func contextsTable(w io.Writer, rows []contextRow) error {
	if len(rows) == 0 {
		fmt.Fprintln(w, "no contexts; `runway up` or `runway login --server URL` adds one")
		return nil
	}
	fmt.Fprintf(w, "  %-16s  %-32s  %s\n", "NAME", "SERVER", "TOKEN")
	for _, r := range rows {
		mark := " "
		if r.Current {
			mark = "*"
		}
		fmt.Fprintf(w, "%s %-16s  %-32s  %s\n", mark, r.Name, r.Server, r.Token)
	}
	return nil
}
