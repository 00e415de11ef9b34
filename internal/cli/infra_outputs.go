package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/driver/ecs"
	"github.com/runwayhq/runway/internal/iac"
)

func newInfraOutputsCmd(g *Globals) *cobra.Command {
	var f infraFlags
	cmd := &cobra.Command{
		Use:   "outputs [--env ENV]",
		Short: "Print the file runway server --aws-outputs reads, from the applied roots' outputs",
		Long: `Outputs reads the outputs of the roots runway infra apply ran (bootstrap, then
each aws environment's network, platform and service roots) with tofu (or
terraform) output -json, from their state backends, and prints what the aws
driver reads of them, by environment: the JSON file runway server
--aws-outputs takes (docs/aws.md). Every environment with target aws, or
--env's alone. A missing output is reported, all at once, and nothing is
printed. Credentials are the tool's usual ones (AWS_PROFILE, ...); a root
not initialized on this machine is initialized first.`,
		Example: `  runway infra outputs --env staging > aws-outputs.json
  runway infra outputs --dir examples/saas > aws-outputs.json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, in, err := generateInput(g, &f, true)
			if err != nil {
				return err
			}
			var envs []*config.Environment
			for _, e := range iac.AWSEnvironments(ws.Project) {
				if f.env == "" || e.Name == f.env {
					envs = append(envs, e)
				}
			}
			if len(envs) == 0 {
				if f.env != "" {
					return UsageErrorf("--env %s: target is %s; infra manages aws environments only", f.env, ws.Project.Environment(f.env).Target)
				}
				return fmt.Errorf("project %s has no environment with target aws", ws.Project.Name)
			}
			bin, err := iac.FindBinary(iac.LookPath)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			r := &iac.Runner{Bin: bin, Dir: f.outDir(ws), Stdout: g.Stderr, Stderr: g.Stderr, Progress: g.Stderr}
			bootstrap, err := r.Outputs(ctx, "bootstrap")
			if err != nil {
				return err
			}
			out := map[string]ecs.Env{}
			var problems []string
			for _, e := range envs {
				o := ecs.RootOutputs{Bootstrap: bootstrap, Services: map[string]map[string]json.RawMessage{}}
				base := e.Name + "/" + e.Region + "/"
				for _, root := range iac.Roots(ws.Project, in.Services, e.Name) {
					if !strings.HasPrefix(root.Dir, base) {
						continue
					}
					outs, err := r.Outputs(ctx, root.Dir)
					if err != nil {
						return err
					}
					switch rel := strings.TrimPrefix(root.Dir, base); {
					case rel == "network":
						o.Network = outs
					case rel == "platform":
						o.Platform = outs
					case strings.HasPrefix(rel, "services/"):
						o.Services[strings.TrimPrefix(rel, "services/")] = outs
					}
				}
				env, err := ecs.EnvFromOutputs(e.Name, e.Region, ws.Project.Domain, o)
				if err != nil {
					problems = append(problems, err.Error())
					continue
				}
				out[e.Name] = env
			}
			if len(problems) == 0 {
				if err := ecs.CheckEnvironments(out); err != nil {
					problems = append(problems, err.Error())
				}
			}
			if len(problems) > 0 {
				return fmt.Errorf("aws outputs: %s", strings.Join(problems, "; "))
			}
			b, err := json.MarshalIndent(out, "", "  ")
			if err != nil {
				return err
			}
			_, err = fmt.Fprintf(g.Stdout, "%s\n", b)
			return err
		},
	}
	f.add(cmd, "environment whose outputs to print (default: every aws environment)")
	return cmd
}
