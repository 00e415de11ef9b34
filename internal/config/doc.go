// Package config parses, validates and resolves Runway's HCL files:
// runway.hcl (the project) and *.service.hcl (service manifests). It is a
// leaf package: it imports nothing of Runway's.
//
// Load reads a project and its manifests and returns diagnostics with
// file:line:col ranges; Workspace.Resolve deep-merges a service's
// environment overrides over its base and applies defaults.
package config
