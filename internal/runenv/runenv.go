// Package runenv builds what a process Runway starts sees: the template
// values of a manifest ({{PORT}}, {{RELEASE_ID}}, ...) expanded in its
// arguments and env values, and its environment — a short allow-list of the
// starter's own variables, the manifest's env, PORT and the RUNWAY_*
// metadata. Instances (the supervisor) and one-off tasks (pre_deploy and
// verify hooks, run by the server) use the same functions, so a hook never
// sees more of the server's environment than an instance sees of the agent's.
package runenv

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// HostAllowList are the variables of the starting process (agent or server)
// passed on; nothing else of its environment is, tokens included.
var HostAllowList = []string{"PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"}

// Keys are the template values a manifest may use in command, args, env
// values and hooks, in the order docs/manifest.md lists them; Process.Values
// has one entry for each.
var Keys = []string{"PORT", "RELEASE_ID", "VERSION", "SERVICE_NAME", "ENVIRONMENT", "PROJECT", "INSTANCE_ID"}

// templateRE matches {{NAME}}, with optional spaces inside the braces: what
// Expand replaces. placeholderRE matches anything in double braces: what
// validation reads, so {{ PORT-1 }} is an error rather than left as text.
var (
	templateRE    = regexp.MustCompile(`\{\{\s*([A-Za-z_]+)\s*\}\}`)
	placeholderRE = regexp.MustCompile(`\{\{([^{}]*)\}\}`)
)

// Placeholder is one {{...}} in a string.
type Placeholder struct {
	// Text is the placeholder as written ("{{ PORT }}"); Name what is inside,
	// trimmed ("PORT").
	Text, Name string
}

// Known reports whether the placeholder is one of Keys (and so expanded).
func (p Placeholder) Known() bool { return slices.Contains(Keys, p.Name) }

// Placeholders returns the {{...}} placeholders of s, in order.
func Placeholders(s string) []Placeholder {
	if !strings.Contains(s, "{{") {
		return nil
	}
	var out []Placeholder
	for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
		out = append(out, Placeholder{Text: m[0], Name: strings.TrimSpace(m[1])})
	}
	return out
}

// CheckTemplates refuses a placeholder of s that is not a template value,
// naming it and the known ones.
func CheckTemplates(s string) error {
	for _, p := range Placeholders(s) {
		if !p.Known() {
			return fmt.Errorf("%s is not a template value: known values are {{%s}}", p.Text, strings.Join(Keys, "}}, {{"))
		}
	}
	return nil
}

// Process describes the process being started; its fields are the
// template values and the RUNWAY_* metadata.
type Process struct {
	Project, Service, Environment, Release, Version string
	// Instance is the instance id ("task" for a task); Port its port ("" for
	// a task, which gets none).
	Instance, Port string
}

// Values returns the template values of p, keyed as in manifests.
func (p Process) Values() map[string]string {
	return map[string]string{
		"PORT": p.Port, "RELEASE_ID": p.Release, "VERSION": p.Version, "SERVICE_NAME": p.Service,
		"ENVIRONMENT": p.Environment, "PROJECT": p.Project, "INSTANCE_ID": p.Instance,
	}
}

// Expand substitutes template values such as {{PORT}} or {{ RELEASE_ID }}
// in s; unknown names are left as written (validation refuses them).
func Expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "{{") {
		return s
	}
	return templateRE.ReplaceAllStringFunc(s, func(m string) string {
		if v, ok := vals[templateRE.FindStringSubmatch(m)[1]]; ok {
			return v
		}
		return m
	})
}

// ExpandAll expands every element of argv.
func ExpandAll(argv []string, vals map[string]string) []string {
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = Expand(a, vals)
	}
	return out
}

// Environ is the environment of p: the allow-listed variables of this
// process, then ContainerEnviron: the manifest's env (sorted, templates
// expanded), the release's secrets by variable name (sorted, as given: a
// value is never expanded), PORT, the RUNWAY_* metadata, then extra
// ("KEY=value" entries such as RUNWAY_GROUP).
func Environ(p Process, env, secrets map[string]string, extra ...string) []string {
	var out []string
	for _, k := range HostAllowList {
		if v, ok := os.LookupEnv(k); ok {
			out = append(out, k+"="+v)
		}
	}
	return append(out, ContainerEnviron(p, env, secrets, extra...)...)
}

// ContainerEnviron is Environ without the starting process's variables:
// a container keeps its image's PATH and HOME.
func ContainerEnviron(p Process, env, secrets map[string]string, extra ...string) []string {
	vals := p.Values()
	var out []string
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		out = append(out, k+"="+Expand(env[k], vals))
	}
	names := make([]string, 0, len(secrets))
	for k := range secrets {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		out = append(out, k+"="+secrets[k])
	}
	if p.Port != "" {
		out = append(out, "PORT="+p.Port)
	}
	out = append(out,
		"RUNWAY_PROJECT="+p.Project,
		"RUNWAY_SERVICE="+p.Service,
		"RUNWAY_ENVIRONMENT="+p.Environment,
		"RUNWAY_RELEASE="+p.Release,
		"RUNWAY_VERSION="+p.Version,
	)
	return append(out, extra...)
}
