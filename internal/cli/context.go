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
			rows := []contextRow{}
			for _, n := range sortedNames(cfg) {
				c := cfg.Contexts[n]
				tok := "(none)"
				switch {
				case c.TokenFile != "":
					tok = "file " + c.TokenFile
				case c.Token != "":
					tok = "in config.toml"
				}
				rows = append(rows, contextRow{n, n == cfg.Current, c.Server, tok})
			}
			return render(g, rows, contextsTable)
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
