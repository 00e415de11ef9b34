package supervisor

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/runenv"
)

// MaxInstances is the most instances a group may have.
const MaxInstances = 1000

// FieldError is a validation error about one field of a request; Field is
// its JSON path ("health.path", "command[0]").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

var (
	nameRE   = regexp.MustCompile(fmt.Sprintf(`^[a-z0-9]([a-z0-9._-]{0,%d})$`, agentapi.MaxGroupName-1))
	envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// NormalizeSpec fills defaults and validates the spec. It checks that the
// command exists and is executable, so a group is never half-created.
func NormalizeSpec(s *agentapi.GroupSpec) error {
	if !nameRE.MatchString(s.Name) {
		return fieldErr("name", "%q is not a valid group name: use 1-%d lowercase letters, digits, '.', '_' or '-', starting with a letter or digit", s.Name, agentapi.MaxGroupName)
	}
	for _, f := range []struct{ name, v string }{{"service", s.Service}, {"environment", s.Environment}, {"release_id", s.ReleaseID}} {
		if f.v == "" {
			return fieldErr(f.name, "is required")
		}
		if !nameRE.MatchString(strings.ToLower(f.v)) {
			return fieldErr(f.name, "%q: use letters, digits, '.', '_' or '-' (at most 63)", f.v)
		}
	}
	if s.Instances < 0 || s.Instances > MaxInstances {
		return fieldErr("instances", "%d: want 0 to %d", s.Instances, MaxInstances)
	}
	container := s.Image != ""
	if container {
		if err := checkContainerSpec(s); err != nil {
			return err
		}
	} else if s.ContainerPort != 0 {
		return fieldErr("container_port", "is for containers: set image too, or remove it")
	}
	if !container && (len(s.Command) == 0 || s.Command[0] == "") {
		return fieldErr("command", "is required: the program and its arguments, e.g. [\"./bin/hello\", \"--port\", \"{{PORT}}\"]")
	}
	for i, a := range s.Command {
		if err := runenv.CheckTemplates(a); err != nil {
			return fieldErr(fmt.Sprintf("command[%d]", i), "%v", err)
		}
		if strings.IndexByte(a, 0) >= 0 {
			return fieldErr(fmt.Sprintf("command[%d]", i), "contains a NUL byte")
		}
	}
	for k, v := range s.Env {
		if !envKeyRE.MatchString(k) {
			return fieldErr("env", "%q is not a valid variable name", k)
		}
		if config.ReservedEnv(k) {
			return fieldErr("env."+k, "is set by the agent and cannot be overridden")
		}
		if err := runenv.CheckTemplates(v); err != nil {
			return fieldErr("env."+k, "%v", err)
		}
		if strings.IndexByte(v, 0) >= 0 {
			return fieldErr("env."+k, "contains a NUL byte")
		}
	}
	seen := map[string]bool{}
	for i, k := range s.Secrets {
		switch {
		case !envKeyRE.MatchString(k):
			return fieldErr(fmt.Sprintf("secrets[%d]", i), "%q is not a valid variable name", k)
		case config.ReservedEnv(k):
			return fieldErr(fmt.Sprintf("secrets[%d]", i), "%s is set by the agent and cannot hold a secret", k)
		case seen[k]:
			return fieldErr(fmt.Sprintf("secrets[%d]", i), "%s is listed twice", k)
		}
		if _, ok := s.Env[k]; ok {
			return fieldErr(fmt.Sprintf("secrets[%d]", i), "%s is also in env", k)
		}
		seen[k] = true
	}
	sort.Strings(s.Secrets)
	if container {
		s.WorkDir = ""
	} else if err := normalizeWorkDir(s); err != nil {
		return err
	}
	if s.StopTimeout == 0 {
		s.StopTimeout = agentapi.Duration(agentapi.DefaultStopTimeout)
	}
	if s.StopTimeout < 0 || s.StopTimeout.D() > time.Hour {
		return fieldErr("stop_timeout", "%s: want between 0s and 1h", s.StopTimeout.D())
	}
	if s.Limits.CPU < 0 || s.Limits.CPU > 1024 {
		return fieldErr("limits.cpu", "%v: want a number of cores between 0 and 1024", s.Limits.CPU)
	}
	if s.Limits.MemoryMB < 0 || s.Limits.MemoryMB > 1<<30 {
		return fieldErr("limits.memory_mb", "%d: want a positive number of MiB", s.Limits.MemoryMB)
	}
	return normalizeHealth(&s.Health)
}

// normalizeHealth fills what the check leaves out from the manifest's health
// defaults (config.Defaults: the schema's tags), so a group made
// through the agent API is checked as a release of a manifest without a
// health block is. A start period left out is none.
func normalizeHealth(h *agentapi.HealthCheck) error {
	def := config.Defaults[config.Health]()
	if h.Type == "" {
		h.Type = def.Kind
	}
	switch h.Type {
	case agentapi.HealthHTTP:
		if h.Path == "" {
			h.Path = def.Path
		}
		if !strings.HasPrefix(h.Path, "/") || strings.ContainsAny(h.Path, " \r\n\x00") {
			return fieldErr("health.path", "%q: want a URL path starting with /", h.Path)
		}
	case agentapi.HealthExec:
		if len(h.Command) == 0 || h.Command[0] == "" {
			return fieldErr("health.command", "is required for an exec check")
		}
		for i, a := range h.Command {
			if err := runenv.CheckTemplates(a); err != nil {
				return fieldErr(fmt.Sprintf("health.command[%d]", i), "%v", err)
			}
			if strings.IndexByte(a, 0) >= 0 {
				return fieldErr(fmt.Sprintf("health.command[%d]", i), "contains a NUL byte")
			}
		}
	case agentapi.HealthTCP, agentapi.HealthNone:
	default:
		return fieldErr("health.type", "%q: want http, tcp, exec or none", h.Type)
	}
	if h.Interval == 0 {
		h.Interval = agentapi.Duration(def.Interval.Duration)
	}
	if h.Timeout == 0 {
		h.Timeout = agentapi.Duration(min(def.Timeout.Duration, h.Interval.D()))
	}
	if h.HealthyThreshold == 0 {
		h.HealthyThreshold = def.HealthyThreshold
	}
	if h.UnhealthyThreshold == 0 {
		h.UnhealthyThreshold = def.UnhealthyThreshold
	}
	switch {
	case h.Interval.D() < 10*time.Millisecond || h.Interval.D() > time.Hour:
		return fieldErr("health.interval", "%s: want between 10ms and 1h", h.Interval.D())
	case h.Timeout.D() < time.Millisecond || h.Timeout.D() > time.Hour:
		return fieldErr("health.timeout", "%s: want between 1ms and 1h", h.Timeout.D())
	case h.StartPeriod < 0 || h.StartPeriod.D() > 24*time.Hour:
		return fieldErr("health.start_period", "%s: want between 0s and 24h", h.StartPeriod.D())
	case h.HealthyThreshold < 1 || h.HealthyThreshold > 100:
		return fieldErr("health.healthy_threshold", "%d: want 1 to 100", h.HealthyThreshold)
	case h.UnhealthyThreshold < 1 || h.UnhealthyThreshold > 100:
		return fieldErr("health.unhealthy_threshold", "%d: want 1 to 100", h.UnhealthyThreshold)
	}
	return nil
}

// DiffField returns the JSON path of the first field in which two
// normalized specs differ, ignoring the instance count (changed by scaling),
// or "" when they are the same.
func DiffField(a, b agentapi.GroupSpec) string {
	switch {
	case a.Name != b.Name:
		return "name"
	case a.Project != b.Project:
		return "project"
	case a.Service != b.Service:
		return "service"
	case a.Environment != b.Environment:
		return "environment"
	case a.ReleaseID != b.ReleaseID:
		return "release_id"
	case a.Version != b.Version:
		return "version"
	case !slices.Equal(a.Command, b.Command):
		return "command"
	case !slices.Equal(a.Secrets, b.Secrets):
		return "secrets"
	case a.WorkDir != b.WorkDir:
		return "work_dir"
	case a.StopTimeout != b.StopTimeout:
		return "stop_timeout"
	case a.Image != b.Image:
		return "image"
	case a.ContainerPort != b.ContainerPort:
		return "container_port"
	case a.NoInit != b.NoInit:
		return "no_init"
	case a.Limits != b.Limits:
		if a.Limits.CPU != b.Limits.CPU {
			return "limits.cpu"
		}
		return "limits.memory_mb"
	}
	keys := map[string]bool{}
	for k := range a.Env {
		keys[k] = true
	}
	for k := range b.Env {
		keys[k] = true
	}
	sorted := make([]string, 0, len(keys))
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	for _, k := range sorted {
		va, oka := a.Env[k]
		vb, okb := b.Env[k]
		if va != vb || oka != okb {
			return "env." + k
		}
	}
	ha, hb := a.Health, b.Health
	switch {
	case ha.Type != hb.Type:
		return "health.type"
	case ha.Path != hb.Path:
		return "health.path"
	case !slices.Equal(ha.Command, hb.Command):
		return "health.command"
	case ha.Interval != hb.Interval:
		return "health.interval"
	case ha.Timeout != hb.Timeout:
		return "health.timeout"
	case ha.StartPeriod != hb.StartPeriod:
		return "health.start_period"
	case ha.HealthyThreshold != hb.HealthyThreshold:
		return "health.healthy_threshold"
	case ha.UnhealthyThreshold != hb.UnhealthyThreshold:
		return "health.unhealthy_threshold"
	}
	return ""
}

// normalizeWorkDir makes a process's work_dir absolute (the agent's
// directory when unset) and checks that it and the program exist here.
func normalizeWorkDir(s *agentapi.GroupSpec) error {
	if s.WorkDir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return fieldErr("work_dir", "not set and the agent's directory is unknown: %v", err)
		}
		s.WorkDir = wd
	}
	if !filepath.IsAbs(s.WorkDir) {
		return fieldErr("work_dir", "%q must be an absolute path", s.WorkDir)
	}
	s.WorkDir = filepath.Clean(s.WorkDir)
	if st, err := os.Stat(s.WorkDir); err != nil || !st.IsDir() {
		return fieldErr("work_dir", "%q is not a directory on this machine", s.WorkDir)
	}
	if _, err := runenv.Program(s.Command[0], s.WorkDir); err != nil {
		return fieldErr("command[0]", "%v", err)
	}
	return nil
}

// checkContainerSpec checks what a container group needs beyond a
// process group's rules: the port inside the container, and a health check
// the agent can run from outside it.
func checkContainerSpec(s *agentapi.GroupSpec) error {
	if strings.ContainsAny(s.Image, " \t\r\n\x00") {
		return fieldErr("image", "%q is not an image reference", s.Image)
	}
	if s.ContainerPort < 1 || s.ContainerPort > 65535 {
		return fieldErr("container_port", "%d: want the port the service listens on inside the container, 1 to 65535", s.ContainerPort)
	}
	if s.Health.Type == agentapi.HealthExec {
		return fieldErr("health.type", "exec checks run on the agent's machine, not in the container: use http or tcp (probed on the published port)")
	}
	return nil
}
