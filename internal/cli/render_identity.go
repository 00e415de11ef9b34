package cli

import (
	"fmt"
	"time"

	"github.com/runwayhq/runway/internal/api"
)

func printTokens(g *Globals, list []*api.Token) {
	fmt.Fprintf(g.Stdout, "%-32s  %-10s  %-12s  %-16s  %-16s  %s\n", "TOKEN ID", "USER", "NAME", "EXPIRES", "LAST USED", "STATE")
	for _, t := range list {
		state := "active"
		switch {
		case t.RevokedAt != nil:
			state = "revoked " + fmtTime(t.RevokedAt)
		case t.ExpiresAt != nil && !t.ExpiresAt.After(time.Now()):
			state = "expired"
		}
		fmt.Fprintf(g.Stdout, "%-32s  %-10s  %-12s  %-16s  %-16s  %s\n", t.ID, t.User, t.Name, fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt), state)
	}
}
