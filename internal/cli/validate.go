package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
)

func newValidateCmd(g *Globals) *cobra.Command {
	return &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check runway.hcl and service manifests",
		Long: `Validate reads runway.hcl (in PATH or its parents) and every *.service.hcl under
PATH, resolves each service for each environment and reports every problem with
file:line:col, the source line, what is wrong and how to fix it. Exits 1 when
anything is invalid.`,
		Example: "  runway validate\n  runway validate examples/hello\n  runway validate runway.hcl web/web.service.hcl --output json",
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, diags := config.LoadWith(loadOptions(), args...)
			if g.JSON() {
				out := map[string]any{"valid": !diags.HasErrors(), "diagnostics": config.DiagnosticsJSON(diags)}
				if ws != nil {
					out["project"] = ws.Project.Name
					out["services"] = serviceNames(ws)
					out["environments"] = ws.Project.EnvironmentNames()
				}
				if err := writeJSON(g, out); err != nil {
					return err
				}
				if diags.HasErrors() {
					return silentError{ExitFailure}
				}
				return nil
			}
			if _, err := loadWorkspaceWarn(g, args, true); err != nil {
				return err
			}
			fmt.Fprintf(g.Stdout, "valid: project %q, %d environment(s) (%s), %d service(s) (%s)\n",
				ws.Project.Name, len(ws.Project.Environments), strings.Join(ws.Project.EnvironmentNames(), ", "),
				len(ws.Services), strings.Join(serviceNames(ws), ", "))
			return nil
		},
	}
}
