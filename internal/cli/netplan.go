package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/netplan"
)

// planOptions says how the lock file is treated.
type planOptions struct {
	locked bool // fail instead of recording new allocations
}

// loadPlan loads the workspace in dir, allocates the address plan against
// runway.lock.hcl and records new allocations in it (unless locked).
func loadPlan(g *Globals, dir string, opt planOptions) (*config.Workspace, *netplan.Plan, error) {
	ws, err := loadWorkspace(g, []string{dir})
	if err != nil {
		return nil, nil, err
	}
	lockPath := filepath.Join(projectDir(ws), netplan.LockFileName)
	var lock *netplan.Lock
	src, err := os.ReadFile(lockPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, nil, fmt.Errorf("read lock file: %w", err)
	default:
		if lock, err = netplan.ParseLock(src, lockPath); err != nil {
			return nil, nil, err
		}
	}
	in, err := netplan.InputFrom(ws.Project)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", ws.Project.File, err)
	}
	plan, err := netplan.Allocate(in, lock)
	if err != nil {
		return nil, nil, err
	}
	if len(plan.New) > 0 {
		if opt.locked {
			return nil, nil, fmt.Errorf("%s lacks %d allocation(s) (first: %s); run `runway netplan` and commit the lock file", lockPath, len(plan.New), plan.New[0])
		}
		// A record, like the state files: replaced whole or not at all.
		if err := fsutil.WriteFileAtomic(lockPath, plan.Lock.Bytes(), 0o644); err != nil {
			return nil, nil, fmt.Errorf("write lock file: %w", err)
		}
		fmt.Fprintf(g.Stderr, "%s: recorded %d new allocation(s); commit it so they never move\n", displayPath(lockPath), len(plan.New))
	}
	return ws, plan, nil
}

func projectDir(ws *config.Workspace) string {
	if ws.Project.Dir != "" {
		return ws.Project.Dir
	}
	return filepath.Dir(ws.Project.File)
}

func checkEnv(ws *config.Workspace, env string) error {
	if env != "" && ws.Project.Environment(env) == nil {
		return UsageErrorf("--env %q: no such environment in %s (have %v)", env, ws.Project.File, ws.Project.EnvironmentNames())
	}
	return nil
}

func newNetplanCmd(g *Globals) *cobra.Command {
	var env, dir string
	var locked bool
	cmd := &cobra.Command{
		Use:   "netplan",
		Short: "Print the address plan of the project's cloud environments",
		Long: `Netplan allocates the network { ip_space } of runway.hcl: a block per
environment-region, one per availability zone (plus spare blocks), and one subnet
per tier in each zone. Allocations are recorded in runway.lock.hcl next to
runway.hcl and never move afterwards: commit it. Reserved ranges are never used.`,
		Example: "  runway netplan\n  runway netplan --env production --dir examples/saas\n  runway netplan --output json\n  runway netplan --locked   # in CI: fail if runway.lock.hcl is not up to date",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, plan, err := loadPlan(g, dir, planOptions{locked: locked})
			if err != nil {
				return err
			}
			if err := checkEnv(ws, env); err != nil {
				return err
			}
			nets := plan.Networks[:0:0]
			for _, n := range plan.Networks {
				if env == "" || n.Environment == env {
					nets = append(nets, n)
				}
			}
			out := *plan
			out.Networks = nets
			return render(g, out, func(w io.Writer, p netplan.Plan) error { return planTable(w, ws.Project, p, env) })
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "show one environment")
	cmd.Flags().StringVar(&dir, "dir", ".", "project directory")
	cmd.Flags().BoolVar(&locked, "locked", false, "fail instead of recording new allocations in runway.lock.hcl")
	return cmd
}
