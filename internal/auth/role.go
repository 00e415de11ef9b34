package auth

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Built-in role names; environment roles are "<environment>_admin" and
// "<environment>_deployer".
const (
	GlobalAdmin = "global_admin"
	ReadOnly    = "read_only"
)

// Kind is what a role allows, independent of where.
type Kind int

// The kinds of role.
const (
	KindGlobalAdmin Kind = iota + 1
	KindReadOnly
	KindEnvAdmin
	KindEnvDeployer
)

var envNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// Role is one role a user holds.
type Role struct {
	Kind        Kind
	Environment string // for KindEnvAdmin and KindEnvDeployer
	Project     string // empty: every project
}

// String is the role as users write it: "staging_deployer@hello".
func (r Role) String() string {
	var s string
	switch r.Kind {
	case KindGlobalAdmin:
		s = GlobalAdmin
	case KindReadOnly:
		s = ReadOnly
	case KindEnvAdmin:
		s = r.Environment + "_admin"
	case KindEnvDeployer:
		s = r.Environment + "_deployer"
	}
	if r.Project != "" {
		s += "@" + r.Project
	}
	return s
}

// ParseRole reads "global_admin", "read_only", "<env>_admin",
// "<env>_deployer", each but global_admin optionally followed by
// "@<project>".
func ParseRole(s string) (Role, error) {
	name, project, scoped := strings.Cut(s, "@")
	var r Role
	if scoped {
		if !envNameRe.MatchString(project) {
			return Role{}, fmt.Errorf("role %q: %q is not a project name (lower-case letters, digits, dashes)", s, project)
		}
		r.Project = project
	}
	switch {
	case name == GlobalAdmin:
		if scoped {
			return Role{}, fmt.Errorf("role %q: global_admin cannot be scoped to a project; use <environment>_admin@%s", s, project)
		}
		r.Kind = KindGlobalAdmin
	case name == ReadOnly:
		r.Kind = KindReadOnly
	case strings.HasSuffix(name, "_admin") && envNameRe.MatchString(strings.TrimSuffix(name, "_admin")):
		r.Kind, r.Environment = KindEnvAdmin, strings.TrimSuffix(name, "_admin")
	case strings.HasSuffix(name, "_deployer") && envNameRe.MatchString(strings.TrimSuffix(name, "_deployer")):
		r.Kind, r.Environment = KindEnvDeployer, strings.TrimSuffix(name, "_deployer")
	default:
		return Role{}, fmt.Errorf("role %q: want global_admin, read_only, <environment>_admin or <environment>_deployer (such as staging_deployer), optionally @<project>", s)
	}
	return r, nil
}

// ParseRoles parses and de-duplicates role strings, sorted.
func ParseRoles(list []string) ([]Role, error) {
	seen := map[string]bool{}
	var out []Role
	for _, s := range list {
		r, err := ParseRole(s)
		if err != nil {
			return nil, err
		}
		if !seen[r.String()] {
			seen[r.String()] = true
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, nil
}

// RoleStrings renders roles as users write them.
func RoleStrings(roles []Role) []string {
	out := make([]string, 0, len(roles))
	for _, r := range roles {
		out = append(out, r.String())
	}
	return out
}

// Principal is an authenticated caller.
type Principal struct {
	User    string
	Roles   []Role
	TokenID string
}

// allows reports whether role r allows action a on target t.
func (r Role) allows(a Action, t Target) bool {
	if r.Kind == KindGlobalAdmin {
		return true
	}
	if r.Project != "" && t.Project != "" && t.Project != r.Project {
		return false
	}
	if r.Project != "" && t.Project == "" {
		// A project-scoped role does not act on what names no project
		// (users, the audit log, every project's releases at once).
		return false
	}
	switch r.Kind {
	case KindReadOnly:
		return a.readOnly()
	case KindEnvAdmin, KindEnvDeployer:
		if a.scope() != scopeEnvironment && a != ActionProjectRead {
			return false
		}
		if a.scope() == scopeEnvironment && t.Environment != r.Environment {
			return false
		}
		if r.Kind == KindEnvAdmin {
			return true
		}
		return a.deployer()
	}
	return false
}
