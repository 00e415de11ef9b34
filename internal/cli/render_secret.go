package cli

import (
	"fmt"
	"io"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// relative says how long ago t was: "just now", "5m ago", "3h ago", "2d ago";
// "never" for no time.
func relative(t *time.Time, now time.Time) string {
	if t == nil || t.IsZero() {
		return "never"
	}
	d := now.Sub(*t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d/time.Minute))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d/time.Hour))
	}
	return fmt.Sprintf("%dd ago", int(d/(24*time.Hour)))
}

func secretWhere(service string) string {
	if service == "" {
		return "(environment)"
	}
	return service
}

// secretsTable lists secrets without values (runway secret list).
func secretsTable(w io.Writer, list []apiwire.SecretInfo) error {
	if len(list) == 0 {
		fmt.Fprintln(w, "no secrets; put one with: runway secret put [SERVICE] --env ENV KEY=VALUE")
		return nil
	}
	now := time.Now()
	fmt.Fprintf(w, "%-24s  %-16s  %-7s  %-10s  %-12s  %s\n", "KEY", "SERVICE", "VERSION", "CREATED", "CHANGED", "LAST ACCESSED")
	for _, s := range list {
		c, ch := s.CreatedAt, s.ChangedAt
		fmt.Fprintf(w, "%-24s  %-16s  %-7s  %-10s  %-12s  %s\n", s.Key, secretWhere(s.Service), fmt.Sprintf("v%d", s.Version),
			relative(&c, now), relative(&ch, now), relative(s.AccessedAt, now))
	}
	return nil
}

// secretHistoryTable lists a secret's versions (runway secret history).
func secretHistoryTable(w io.Writer, list []apiwire.SecretVersion) error {
	now := time.Now()
	fmt.Fprintf(w, "%-7s  %-16s  %-12s  %s\n", "VERSION", "CREATED", "BY", "NOTE")
	for _, v := range list {
		note := ""
		if v.RollbackOf > 0 {
			note = fmt.Sprintf("rollback to v%d", v.RollbackOf)
		}
		at := v.CreatedAt
		fmt.Fprintf(w, "%-7s  %-16s  %-12s  %s\n", fmt.Sprintf("v%d", v.Version), relative(&at, now), v.CreatedBy, note)
	}
	return nil
}
