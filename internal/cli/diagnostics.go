package cli

import (
	"errors"
	"fmt"

	"github.com/hashicorp/hcl/v2"

	"github.com/runwayhq/runway/internal/client"
	"github.com/runwayhq/runway/internal/config"
)

// serverDiagnostics prints the located diagnostics of a server problem, as
// `runway validate` would (files maps the names the request used to the
// local files), and returns the error to exit with.
func serverDiagnostics(g *Globals, err error, files map[string]*hcl.File) error {
	var e *client.Error
	if !errors.As(err, &e) || len(e.Diagnostics) == 0 {
		return err
	}
	fmt.Fprintf(g.Stderr, "The server refused the manifest (%s):\n\n", e.Detail)
	_ = config.WriteDiagnostics(g.Stderr, files, config.DiagnosticsFromJSON(e.Diagnostics), g.Color())
	return silentError{ExitFailure}
}
