package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newContextCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "context",
		Short: "List, choose and remove the servers this CLI talks to",
		Long: `A context is a server URL and the token to send it, kept in
$XDG_CONFIG_HOME/runway/config.toml (0600; ~/.config by default). runway up
and runway login add them; the current one is used unless --server,
--context or RUNWAY_SERVER say otherwise. A context's token is only ever sent
to its own server.`,
	}
	list := &cobra.Command{
		Use:     "list",
		Short:   "List the contexts; * marks the current one",
		Example: "  runway context list\n  runway context list --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, _, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			type row struct {
				Name    string `json:"name"`
				Current bool   `json:"current"`
				Server  string `json:"server"`
				Token   string `json:"token"`
			}
			rows := []row{}
			for _, n := range sortedNames(cfg) {
				c := cfg.Contexts[n]
				tok := "(none)"
				switch {
				case c.TokenFile != "":
					tok = "file " + c.TokenFile
				case c.Token != "":
					tok = "in config.toml"
				}
				rows = append(rows, row{n, n == cfg.Current, c.Server, tok})
			}
			if g.JSON() {
				return writeJSON(g, rows)
			}
			if len(rows) == 0 {
				fmt.Fprintln(g.Stdout, "no contexts; `runway up` or `runway login --server URL` adds one")
				return nil
			}
			fmt.Fprintf(g.Stdout, "  %-16s  %-32s  %s\n", "NAME", "SERVER", "TOKEN")
			for _, r := range rows {
				mark := " "
				if r.Current {
					mark = "*"
				}
				fmt.Fprintf(g.Stdout, "%s %-16s  %-32s  %s\n", mark, r.Name, r.Server, r.Token)
			}
			return nil
		},
	}
	use := &cobra.Command{
		Use:     "use NAME",
		Short:   "Make a context the current one",
		Example: "  runway context use production",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			if cfg.Contexts[args[0]] == nil {
				return fmt.Errorf("no context %q; runway context list shows them", args[0])
			}
			cfg.Current = args[0]
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "current context: %s (%s)\n", args[0], cfg.Contexts[args[0]].Server)
			return nil
		},
	}
	remove := &cobra.Command{
		Use:     "remove NAME",
		Short:   "Forget a context (and its token, if config.toml held it)",
		Example: "  runway context remove old-staging",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, path, err := LoadCLIConfig()
			if err != nil {
				return err
			}
			if cfg.Contexts[args[0]] == nil {
				return fmt.Errorf("no context %q; runway context list shows them", args[0])
			}
			delete(cfg.Contexts, args[0])
			if cfg.Current == args[0] {
				cfg.Current = ""
			}
			if err := cfg.Save(path); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "removed context %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(list, use, remove)
	return cmd
}
