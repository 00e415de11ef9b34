package cli

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
)

func newServiceCmd(g *Globals) *cobra.Command {
	cmd := &cobra.Command{Use: "service", Short: "Create service manifests"}
	var command, image, dir string
	initCmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Write NAME.service.hcl with every setting documented",
		Example: `  runway service init web --command "./bin/web --port {{PORT}}"
  runway service init api --image registry.example.com/api:1.0.0`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if projectNameFrom(name) != name {
				return UsageErrorf("service name %q: use lower-case letters, digits and dashes, starting with a letter (such as %q)", name, projectNameFrom(name))
			}
			if command != "" && image != "" {
				return UsageErrorf("give --command or --image, not both")
			}
			var argv []string
			if command != "" {
				argv = strings.Fields(command)
			} else if image == "" {
				argv = []string{"./bin/" + name, "--port", "{{PORT}}"}
			}
			path := filepath.Join(dir, name+".service.hcl")
			if err := writeNew(path, config.ServiceScaffold(name, argv, image)); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "wrote %s\nnext: runway validate %s\n", path, dir)
			return nil
		},
	}
	initCmd.Flags().StringVar(&command, "command", "", "program and arguments to run (split on spaces), for process targets")
	initCmd.Flags().StringVar(&image, "image", "", "container image, for container targets")
	initCmd.Flags().StringVar(&dir, "dir", ".", "directory to write the manifest in")
	cmd.AddCommand(initCmd)
	return cmd
}
