package cli

import (
	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
)

func newDocsCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "docs", Short: "Print generated documentation"}
	cmd.AddCommand(&cobra.Command{
		Use:     "manifest",
		Short:   "Print the Markdown reference of runway.hcl and service manifests",
		Example: "  runway docs manifest > docs/manifest.md",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			return config.WriteManifestDocs(g.Stdout)
		},
	})
	return cmd
}
