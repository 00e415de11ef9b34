package cli

import (
	"github.com/spf13/cobra"
)

func newCompletionCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Example: `  source <(runway completion bash)
  runway completion zsh > "${fpath[1]}/_runway"
  runway completion fish > ~/.config/fish/completions/runway.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(g.Stdout, true)
			case "zsh":
				return root.GenZshCompletion(g.Stdout)
			case "fish":
				return root.GenFishCompletion(g.Stdout, true)
			}
			return UsageErrorf("unknown shell %q: want bash, zsh or fish", args[0])
		},
	}
}
