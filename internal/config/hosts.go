package config

import (
	"strconv"

	"github.com/runwayhq/runway/internal/naming"
)

// Host is a host name a service's routes serve, and the manifest field
// (a path as in diagnostics) that makes it so.
type Host struct {
	Name  string
	Field string
}

// RouteHosts returns every name the service's routes serve in its
// environment: <service>.<environment>.<domain or localhost>, its extra
// hosts, and the preview host while a blue_green release previews. Two
// services (of any project or environment) never share one.
func (s *Service) RouteHosts() []Host {
	out := []Host{{Name: naming.Service(s.Name, s.Environment, s.Domain), Field: "@label"}}
	for i, h := range s.Hosts {
		out = append(out, Host{Name: h, Field: "hosts[" + strconv.Itoa(i) + "]"})
	}
	if bg := s.Deploy.BlueGreen; s.Deploy.Strategy == "blue_green" && (bg.Preview || len(bg.Verify) > 0) {
		field := "deploy.blue_green.preview"
		if !bg.Preview {
			field = "deploy.blue_green.verify"
		}
		out = append(out, Host{Name: naming.Preview(s.Name, s.Environment, s.Domain), Field: field})
	}
	return out
}
