// Package naming derives the DNS names of environments and services, so the
// proxy, the agent, the infrastructure generator and the CLI agree on them:
// <environment>.<domain>, <service>.<environment>.<domain> and the blue/green
// preview host <service>-preview.<environment>.<domain>. A project without a
// domain lives under .localhost, which resolves to this machine.
//
// It also holds the two syntax rules of what a route may serve, so the
// manifest validator, the agent API and the proxy refuse the same things:
// CheckHost (host names) and CheckPathPrefix (path prefixes).
package naming

import "strings"

// LocalDomain is the domain used when a project declares none.
const LocalDomain = "localhost"

// PreviewSuffix is appended to the service label of the preview host.
const PreviewSuffix = "-preview"

func domainOr(domain string) string {
	d := strings.Trim(strings.ToLower(domain), ".")
	if d == "" {
		return LocalDomain
	}
	return d
}

// Environment returns <environment>.<domain>, the zone every host of the
// environment lives in.
func Environment(env, domain string) string {
	return strings.ToLower(env) + "." + domainOr(domain)
}

// Service returns <service>.<environment>.<domain>.
func Service(service, env, domain string) string {
	return strings.ToLower(service) + "." + Environment(env, domain)
}

// Preview returns <service>-preview.<environment>.<domain>, the host routed
// to the new group of a blue/green release before the switch.
func Preview(service, env, domain string) string {
	return strings.ToLower(service) + PreviewSuffix + "." + Environment(env, domain)
}
