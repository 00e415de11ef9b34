package cli

import (
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
)

func newConfigCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Inspect resolved configuration"}
	var env, dir string
	show := &cobra.Command{
		Use:   "show SERVICE --env ENV",
		Short: "Print a service's fully resolved manifest for one environment",
		Long: `Show deep-merges the service's environment override over its base, applies every
default and prints the result: exactly what a release to that environment uses.`,
		Example: "  runway config show hello --env production\n  runway config show hello --env production --output json --dir examples/hello",
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if env == "" {
				return UsageErrorf("--env is required: name the environment, such as --env production")
			}
			ws, err := loadWorkspace(g, []string{dir})
			if err != nil {
				return err
			}
			svc, diags := ws.Resolve(args[0], env)
			if diags.HasErrors() {
				_ = config.WriteDiagnostics(g.Stderr, ws.Files(), diags, g.Color())
				return silentError{ExitFailure}
			}
			return render[any](g, svc, flatTable)
		},
	}
	show.Flags().StringVarP(&env, "env", "e", "", "environment to resolve for (required)")
	show.Flags().StringVar(&dir, "dir", ".", "project directory to read manifests from")
	cmd.AddCommand(show)
	return cmd
}
