package cli

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/netplan"
)

// planTable prints an address plan (runway netplan): its networks, zones,
// subnets and spare blocks, and the environments without a cloud network.
func planTable(w io.Writer, p *config.Project, plan netplan.Plan, env string) error {
	fmt.Fprintf(w, "ip_space %s (%s hosts)\n", plan.Space, thousands(netplan.Hosts(plan.Space)))
	for _, r := range plan.Reserved {
		fmt.Fprintf(w, "reserved %s\n", r)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, n := range plan.Networks {
		fmt.Fprintln(tw)
		fmt.Fprintf(tw, "%s/%s\t%s\t(%s hosts)\n", n.Environment, n.Region, n.CIDR, thousands(n.Hosts))
		for _, z := range n.Zones {
			fmt.Fprintf(tw, "  %s\t%s\t(%s hosts)\n", z.Name, z.CIDR, thousands(z.Hosts))
			for _, s := range z.Subnets {
				fmt.Fprintf(tw, "    %s\t%s\t(%s hosts)\n", s.Tier, s.CIDR, thousands(s.Hosts))
			}
		}
		for _, s := range n.Spare {
			fmt.Fprintf(tw, "  spare\t%s\t(%s hosts)\n", s, thousands(netplan.Hosts(s)))
		}
	}
	tw.Flush()
	for _, e := range p.Environments {
		if e.Region == "" && (env == "" || env == e.Name) {
			fmt.Fprintf(w, "\n%s: target %s, no cloud network\n", e.Name, e.Target)
		}
	}
	return nil
}

// dnsTable lists the names Runway routes (runway dns).
func dnsTable(w io.Writer, recs []dnsRecord) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ENVIRONMENT\tSERVICE\tKIND\tNAME")
	for _, r := range recs {
		svc := r.Service
		if svc == "" {
			svc = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Environment, svc, r.Kind, r.Name)
	}
	return tw.Flush()
}
