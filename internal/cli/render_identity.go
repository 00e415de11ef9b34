package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
)

// tokensTable lists tokens, never their secrets (runway token list, and the
// tokens of runway user show).
func tokensTable(w io.Writer, list []*apiwire.Token) error {
	fmt.Fprintf(w, "%-32s  %-10s  %-12s  %-16s  %-16s  %s\n", "TOKEN ID", "USER", "NAME", "EXPIRES", "LAST USED", "STATE")
	for _, t := range list {
		state := "active"
		switch {
		case t.RevokedAt != nil:
			state = "revoked " + fmtTime(t.RevokedAt)
		case t.ExpiresAt != nil && !t.ExpiresAt.After(time.Now()):
			state = "expired"
		}
		fmt.Fprintf(w, "%-32s  %-10s  %-12s  %-16s  %-16s  %s\n", t.ID, t.User, t.Name, fmtTime(t.ExpiresAt), fmtTime(t.LastUsedAt), state)
	}
	return nil
}

// usersTable lists users with their state and roles (runway user list).
func usersTable(w io.Writer, users []*apiwire.User) error {
	fmt.Fprintf(w, "%-20s  %-8s  %s\n", "NAME", "STATE", "ROLES")
	for _, u := range users {
		fmt.Fprintf(w, "%-20s  %-8s  %s\n", u.Name, map[bool]string{true: "disabled", false: "enabled"}[u.Disabled], strings.Join(u.Roles, ", "))
	}
	return nil
}

// userTable prints one user with its roles and tokens (runway user show).
func userTable(w io.Writer, u *apiwire.User) error {
	fmt.Fprintf(w, "user %s (%s), created by %s at %s\nroles: %s\n", u.Name, map[bool]string{true: "disabled", false: "enabled"}[u.Disabled],
		u.CreatedBy, u.CreatedAt.Local().Format(time.RFC3339), strings.Join(u.Roles, ", "))
	return tokensTable(w, u.Tokens)
}

// auditTable lists audit entries, one line each (runway audit).
func auditTable(w io.Writer, list []*apiwire.AuditEntry) error {
	fmt.Fprintf(w, "%-5s  %-19s  %-10s  %-15s  %-16s  %-28s  %s\n", "SEQ", "TIME", "ACTOR", "SOURCE", "ACTION", "TARGET", "OUTCOME")
	for _, e := range list {
		fmt.Fprintf(w, "%-5d  %-19s  %-10s  %-15s  %-16s  %-28s  %s\n", e.Seq, e.At.Local().Format("2006-01-02 15:04:05"), e.Actor, e.Source, e.Action, e.Target, e.Outcome)
	}
	return nil
}

// whoamiView is what runway whoami prints: the server's answer and where the
// CLI sent the question.
type whoamiView struct {
	*apiwire.Whoami
	Server  string `json:"server"`
	Context string `json:"context,omitempty"`
}

// whoamiTable prints who the token is and where it may deploy (runway whoami).
func whoamiTable(out io.Writer, v whoamiView) error {
	from := ""
	if v.Context != "" {
		from = " (context " + v.Context + ")"
	}
	deploy := "nowhere"
	if len(v.DeployTo) > 0 {
		deploy = strings.Join(v.DeployTo, "; ")
	}
	expires := "never"
	if v.TokenExpiresAt != nil {
		expires = v.TokenExpiresAt.Local().Format(time.RFC3339)
	}
	fmt.Fprintf(out, "user:      %s\nroles:     %s\nserver:    %s%s\ntoken:     %s (expires %s)\ndeploy to: %s\n",
		v.User, strings.Join(v.Roles, ", "), v.Server, from, v.TokenID, expires, deploy)
	return nil
}
