// Package cli holds Runway's cobra commands: they parse flags, call the
// config package, the API client or the agent API, and render output. No
// business logic lives here.
//
// Read in this order: root.go (globals, exit codes, the list of commands);
// one file per top-level command (deploy.go, status.go, release.go for
// release show, ...), which builds the data it prints; render.go and
// render_*.go, where that data becomes a table (--output json prints the
// data itself); then what several commands share: follow.go (following a
// release), resolve.go (context, server, token), workspace.go (manifests),
// projectref.go (--project), diagnostics.go, prompt.go and request.go.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes shared by every command.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// Version is set at build time with -ldflags "-X .../internal/cli.Version=...".
var Version = "dev"

// Globals are the flags every command accepts.
type Globals struct {
	Server  string
	Token   string
	Context string
	Output  string
	NoColor bool

	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// JSON reports whether the user asked for JSON output.
func (g *Globals) JSON() bool { return g.Output == "json" }

// Color reports whether output may use colors: only on a terminal, never
// with --no-color or NO_COLOR set.
func (g *Globals) Color() bool {
	if g.NoColor || os.Getenv("NO_COLOR") != "" {
		return false
	}
	f, ok := g.Stdout.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// usageError marks errors that should exit with code 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// UsageErrorf returns an error that makes the command exit with code 2.
func UsageErrorf(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// silentError is a failure whose message was already printed (for example
// diagnostics); Main only sets the exit code.
type silentError struct{ code int }

func (e silentError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// NewRoot builds the root command with all subcommands.
func NewRoot(g *Globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "runway",
		Short: "Runway ships your services to your environments with zero downtime",
		Long: `Runway takes a team from its first deploy to many environments without an
infrastructure team: describe environments (runway.hcl) and services
(*.service.hcl) next to your code, and Runway ships releases to them with
zero downtime, on this machine or on real engines.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			switch g.Output {
			case "table", "json":
			default:
				return UsageErrorf("--output %q: want table or json", g.Output)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.Server, "server", os.Getenv("RUNWAY_SERVER"), "Runway server URL (env RUNWAY_SERVER; default: the current context's, else "+DefaultServer+")")
	pf.StringVar(&g.Token, "token", os.Getenv("RUNWAY_TOKEN"), "API token (env RUNWAY_TOKEN; default: the token of the server's context)")
	pf.StringVar(&g.Context, "context", os.Getenv("RUNWAY_CONTEXT"), "context to use instead of the current one (env RUNWAY_CONTEXT; see runway context list)")
	pf.StringVarP(&g.Output, "output", "o", "table", "output format: table or json")
	pf.BoolVar(&g.NoColor, "no-color", false, "disable colors (also when NO_COLOR is set)")
	root.SetIn(g.Stdin)
	root.SetOut(g.Stdout)
	root.SetErr(g.Stderr)
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageError{fmt.Errorf("%w (see '%s --help')", err, c.CommandPath())}
	})

	for _, add := range commands() {
		root.AddCommand(add(g))
	}
	return root
}

// commands lists the constructors of top-level commands, one file each
// (deploy.go holds newDeployCmd). Help sorts them by name; this order is the
// order of registration only.
func commands() []func(*Globals) *cobra.Command {
	return []func(*Globals) *cobra.Command{
		newAgentCmd,
		newKubernetesCmd,
		newProxyCmd,
		newCompletionCmd,
		newContextCmd,
		newLoginCmd,
		newUserCmd,
		newTokenCmd,
		newWhoamiCmd,
		newDashboardCmd,
		newAuditCmd,
		newInfraCmd,
		newValidateCmd,
		newConfigCmd,
		newProjectCmd,
		newServiceCmd,
		newDocsCmd,
		newNetplanCmd,
		newDNSCmd,
		newBuildCmd,
		newImagesCmd,
		newDeployCmd,
		newStatusCmd,
		newReleasesCmd,
		newReleaseCmd,
		newRollbackCmd,
		newHaltCmd,
		newMaintenanceCmd,
		newSecretCmd,
		newLogsCmd,
		newEventsCmd,
		newTopCmd,
		newAlarmsCmd,
		newServerCmd,
		newUpCmd,
		newVersionCmd,
	}
}

// Main runs the CLI and returns the process exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &Globals{Stdin: stdin, Stdout: stdout, Stderr: stderr}
	root := NewRoot(g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var se silentError
	if errors.As(err, &se) {
		return se.code
	}
	fmt.Fprintf(stderr, "Error: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return ExitUsage
	}
	return ExitFailure
}

// isCobraUsage recognises the argument errors cobra produces itself.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, p := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "requires at most", "invalid argument", "flag needs an argument"} {
		if strings.Contains(msg, p) {
			return true
		}
	}
	return false
}

// exactArgs is cobra.ExactArgs with a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return UsageErrorf("%s takes %d argument(s), got %d (see '%s --help')", cmd.CommandPath(), n, len(args), cmd.CommandPath())
		}
		return nil
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
