package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/naming"
)

// dnsRecord is one name of `runway dns`.
type dnsRecord struct {
	Environment string `json:"environment"`
	Service     string `json:"service,omitempty"`
	Kind        string `json:"kind"` // zone, service, preview, host
	Name        string `json:"name"`
}

func newDNSCmd(g *Globals) *cobra.Command {
	var env, dir string
	cmd := &cobra.Command{
		Use:   "dns",
		Short: "List the DNS names of environments and services",
		Long: `DNS lists every name Runway routes: <environment>.<domain> for each
environment, <service>.<environment>.<domain> for each service, the preview host
<service>-preview.<environment>.<domain> of blue/green services with preview on,
and the extra hosts of each manifest. Without a domain, names end in .localhost.`,
		Example: "  runway dns\n  runway dns --env production --dir examples/saas\n  runway dns --output json",
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, args []string) error {
			ws, err := loadWorkspace(g, []string{dir})
			if err != nil {
				return err
			}
			if err := checkEnv(ws, env); err != nil {
				return err
			}
			recs, err := dnsRecords(ws, env)
			if err != nil {
				return err
			}
			return render(g, recs, dnsTable)
		},
	}
	cmd.Flags().StringVarP(&env, "env", "e", "", "list one environment")
	cmd.Flags().StringVar(&dir, "dir", ".", "project directory")
	return cmd
}

func dnsRecords(ws *config.Workspace, env string) ([]dnsRecord, error) {
	recs := []dnsRecord{}
	domain := ws.Project.Domain
	for _, e := range ws.Project.Environments {
		if env != "" && e.Name != env {
			continue
		}
		recs = append(recs, dnsRecord{Environment: e.Name, Kind: "zone", Name: naming.Environment(e.Name, domain)})
		for _, m := range ws.Services {
			s, diags := ws.Resolve(m.Name, e.Name)
			if diags.HasErrors() {
				return nil, fmt.Errorf("resolve %s for %s: %s", m.Name, e.Name, diags.Error())
			}
			recs = append(recs, dnsRecord{Environment: e.Name, Service: s.Name, Kind: "service", Name: naming.Service(s.Name, e.Name, domain)})
			if s.Deploy.Strategy == "blue_green" && s.Deploy.BlueGreen.Preview {
				recs = append(recs, dnsRecord{Environment: e.Name, Service: s.Name, Kind: "preview", Name: naming.Preview(s.Name, e.Name, domain)})
			}
			for _, h := range s.Hosts {
				recs = append(recs, dnsRecord{Environment: e.Name, Service: s.Name, Kind: "host", Name: h})
			}
		}
	}
	return recs, nil
}
