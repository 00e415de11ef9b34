package cli

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/dashboard"
)

func newDashboardCmd(g *Globals) *cobra.Command {
	var noOpen bool
	cmd := &cobra.Command{
		Use:   "dashboard",
		Short: "Print (and open) a one-time login link to the server's web dashboard",
		Long: `dashboard makes a one-time login code for you on the current context's
server and prints the dashboard's login link. The link works once, within
` + dashboard.LoginCodeLifetime.String() + `; the browser then holds a session (idle limit 30m, at
most 12h; ` + "`runway token list`" + ` shows it as "` + dashboard.SessionName + `"). With a
display (DISPLAY or WAYLAND_DISPLAY set) it opens the link with xdg-open.`,
		Example: "  runway dashboard\n  runway dashboard --no-open\n  runway --context prod dashboard --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := g.resolve()
			if err != nil {
				return err
			}
			c, err := newClient(r)
			if err != nil {
				return err
			}
			out, err := c.CreateToken(cmd.Context(), apiwire.CreateTokenRequest{Name: dashboard.LoginCodeName, ExpiresIn: dashboard.LoginCodeLifetime.String()})
			if err != nil {
				return err
			}
			link := strings.TrimRight(r.Server, "/") + dashboard.Prefix + "login?" + url.Values{"code": {out.Token}}.Encode()
			if g.JSON() {
				return writeJSON(g, map[string]any{"url": link, "user": out.TokenInfo.User, "expires_at": out.TokenInfo.ExpiresAt})
			}
			fmt.Fprintf(g.Stdout, "Dashboard of %s for %s: open this link within %s (it works once):\n%s\n",
				r.Server, out.TokenInfo.User, dashboard.LoginCodeLifetime, link)
			if noOpen || (os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "") {
				return nil
			}
			opener, err := exec.LookPath("xdg-open")
			if err != nil {
				return nil
			}
			// The link goes on the command line of xdg-open only, never to a log.
			p := exec.Command(opener, link)
			if err := p.Start(); err != nil {
				fmt.Fprintf(g.Stderr, "could not open a browser (%v): open the link above\n", err)
				return nil
			}
			// xdg-open hands over to the browser and exits at once.
			done := make(chan struct{})
			go func() { defer close(done); _ = p.Wait() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&noOpen, "no-open", false, "only print the link, even with a display")
	return cmd
}
