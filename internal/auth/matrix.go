package auth

import (
	"fmt"
	"strings"
)

// Action is what a request does; the audit log records it.
type Action string

// The actions of the server API. Secret values are read and written by
// <environment>_admin and global_admin only (ActionSecretRead,
// ActionSecretWrite); what may be shown of secrets (keys, versions, times)
// is readable like releases, so a deploy can show the versions it pins.
const (
	ActionPublic         Action = "public" // no token needed
	ActionWhoami         Action = "whoami"
	ActionTokenSelf      Action = "token.self" // the caller's own tokens
	ActionProjectList    Action = "project.list"
	ActionProjectRead    Action = "project.read"
	ActionProjectApply   Action = "project.apply"
	ActionReleaseRead    Action = "release.read"
	ActionStatusRead     Action = "status.read"
	ActionDeploy         Action = "release.deploy"
	ActionRollback       Action = "release.rollback"
	ActionHalt           Action = "release.halt"
	ActionUserRead       Action = "user.read"
	ActionUserWrite      Action = "user.write"
	ActionAuditRead      Action = "audit.read"
	ActionTokenRevokeAny Action = "token.revoke_any"
	ActionSecretList     Action = "secret.list"  // keys, versions and times; never values
	ActionSecretRead     Action = "secret.read"  // a value (audited)
	ActionSecretWrite    Action = "secret.write" // put, rollback, delete
	ActionSecretRotate   Action = "secret.rotate_master_key"
	// ActionLogsRead reads what a service's instances wrote; ActionEventsRead
	// its events and the environment's live view (runway top): both are
	// reads of an environment, like its status.
	ActionLogsRead   Action = "logs.read"
	ActionEventsRead Action = "events.read"
	// ActionMaintenance turns a service's maintenance page on or off: like a
	// halt or a rollback, the environment's deployers may.
	ActionMaintenance Action = "service.maintenance"
	// ActionMetricsRead scrapes the server's /metrics (counts and durations,
	// no names of anything secret): read_only, for a Prometheus's token.
	ActionMetricsRead Action = "metrics.read"
)

type scope int

const (
	scopeNone scope = iota
	scopeProject
	scopeEnvironment
)

func (a Action) scope() scope {
	switch a {
	case ActionProjectRead, ActionProjectApply:
		return scopeProject
	case ActionReleaseRead, ActionStatusRead, ActionDeploy, ActionRollback, ActionHalt, ActionLogsRead, ActionEventsRead,
		ActionSecretList, ActionSecretRead, ActionSecretWrite, ActionMaintenance:
		return scopeEnvironment
	}
	return scopeNone
}

// readOnly: allowed to read_only (and to every role, for the caller's own
// identity and the list of projects).
func (a Action) readOnly() bool {
	switch a {
	case ActionProjectList, ActionProjectRead, ActionReleaseRead, ActionStatusRead, ActionUserRead, ActionAuditRead, ActionWhoami, ActionTokenSelf,
		ActionSecretList, ActionLogsRead, ActionEventsRead, ActionMetricsRead:
		return true
	}
	return false
}

// deployer: allowed to <environment>_deployer in its environment.
func (a Action) deployer() bool {
	switch a {
	case ActionReleaseRead, ActionStatusRead, ActionDeploy, ActionRollback, ActionHalt, ActionProjectRead, ActionSecretList,
		ActionLogsRead, ActionEventsRead, ActionMaintenance:
		return true
	}
	return false
}

// anyone: allowed to every authenticated caller, whatever its roles.
func (a Action) anyone() bool {
	return a == ActionWhoami || a == ActionTokenSelf || a == ActionProjectList
}

// TargetFrom says where a route's target (project, environment) is read.
type TargetFrom int

// Where targets come from.
const (
	FromNothing     TargetFrom = iota
	FromPath                   // path values {project}, {env}
	FromQuery                  // query parameters project, environment
	FromBody                   // JSON fields "project", "environment" of the body
	FromReleasePath            // the release named by path value {id}
)

// Rule is how one route of the server API is authorized.
type Rule struct {
	Method, Pattern string
	Action          Action
	Target          TargetFrom
	// Idempotent routes answer a repeated request (same request id, same
	// body) with what the first made; other mutating routes refuse it.
	Idempotent bool
}

// Route is the ServeMux pattern of the rule.
func (r Rule) Route() string { return r.Method + " " + r.Pattern }

// Rules is the authorization table of the server API: one rule per route.
// internal/api registers exactly these routes; TestRouteRoleMatrix walks
// every one × every role.
var Rules = []Rule{
	{"GET", "/v1/health", ActionPublic, FromNothing, false},
	{"GET", "/v1/whoami", ActionWhoami, FromNothing, false},
	{"GET", "/v1/projects", ActionProjectList, FromNothing, false},
	{"GET", "/v1/projects/{project}", ActionProjectRead, FromPath, false},
	{"PUT", "/v1/projects/{project}", ActionProjectApply, FromPath, false},
	{"POST", "/v1/releases", ActionDeploy, FromBody, true},
	{"GET", "/v1/releases", ActionReleaseRead, FromQuery, false},
	{"GET", "/v1/releases/{id}", ActionReleaseRead, FromReleasePath, false},
	{"POST", "/v1/releases/{id}/halt", ActionHalt, FromReleasePath, false},
	{"POST", "/v1/rollbacks", ActionRollback, FromBody, true},
	{"GET", "/v1/projects/{project}/environments/{env}/services/{service}", ActionStatusRead, FromPath, false},
	{"GET", "/v1/users", ActionUserRead, FromNothing, false},
	{"POST", "/v1/users", ActionUserWrite, FromNothing, false},
	{"GET", "/v1/users/{name}", ActionUserRead, FromNothing, false},
	{"PATCH", "/v1/users/{name}", ActionUserWrite, FromNothing, false},
	{"GET", "/v1/tokens", ActionTokenSelf, FromNothing, false},
	{"POST", "/v1/tokens", ActionTokenSelf, FromNothing, false},
	{"POST", "/v1/tokens/{id}/revoke", ActionTokenSelf, FromNothing, false},
	{"GET", "/v1/audit", ActionAuditRead, FromNothing, false},
	{"GET", "/v1/audit/verify", ActionAuditRead, FromNothing, false},
	{"GET", "/v1/projects/{project}/environments/{env}/secrets", ActionSecretList, FromPath, false},
	{"PUT", "/v1/projects/{project}/environments/{env}/secrets", ActionSecretWrite, FromPath, false},
	{"GET", "/v1/projects/{project}/environments/{env}/secrets/{key}", ActionSecretRead, FromPath, false},
	{"GET", "/v1/projects/{project}/environments/{env}/secrets/{key}/history", ActionSecretList, FromPath, false},
	{"POST", "/v1/projects/{project}/environments/{env}/secrets/{key}/rollback", ActionSecretWrite, FromPath, false},
	{"POST", "/v1/projects/{project}/environments/{env}/secrets/{key}/delete", ActionSecretWrite, FromPath, false},
	{"POST", "/v1/secrets/rotate-master-key", ActionSecretRotate, FromNothing, false},
	{"GET", "/v1/events", ActionEventsRead, FromQuery, false},
	{"GET", "/v1/projects/{project}/environments/{env}/services/{service}/logs", ActionLogsRead, FromPath, false},
	{"GET", "/v1/projects/{project}/environments/{env}/overview", ActionEventsRead, FromPath, false},
	{"GET", "/metrics", ActionMetricsRead, FromNothing, false},
	{"GET", "/v1/alarms", ActionEventsRead, FromQuery, false},
	{"GET", "/v1/notifications", ActionEventsRead, FromQuery, false},
	{"POST", "/v1/projects/{project}/environments/{env}/services/{service}/maintenance", ActionMaintenance, FromPath, false},
}

// Target is what a request acts on.
type Target struct {
	Project     string
	Environment string
}

// Allowed reports whether p may do a on t.
func (p *Principal) Allowed(a Action, t Target) bool {
	if a == ActionPublic {
		return true
	}
	if p == nil {
		return false
	}
	if a.anyone() {
		return true
	}
	for _, r := range p.Roles {
		if r.allows(a, t) {
			return true
		}
	}
	return false
}

// ForbiddenError says what the caller lacks: "forbidden: release.deploy in
// environment production of project hello needs role production_deployer,
// production_admin or global_admin; ci has staging_deployer".
type ForbiddenError struct {
	User   string
	Roles  []Role
	Action Action
	Target Target
}

func (e *ForbiddenError) Error() string {
	var where string
	switch {
	case e.Action.scope() == scopeEnvironment && e.Target.Environment == "":
		where = " without naming an environment (env-scoped roles must name theirs, such as ?environment=staging)"
	case e.Action.scope() == scopeEnvironment:
		where = fmt.Sprintf(" in environment %s", e.Target.Environment)
	}
	if e.Target.Project != "" {
		where += " of project " + e.Target.Project
	}
	has := "no role"
	if len(e.Roles) > 0 {
		has = strings.Join(RoleStrings(e.Roles), ", ")
	}
	return fmt.Sprintf("forbidden: %s%s needs role %s; %s has %s", e.Action, where, orList(Needs(e.Action, e.Target)), e.User, has)
}

// Needs lists the roles that allow a on t, narrowest first (each but
// global_admin may also be held scoped to t's project).
func Needs(a Action, t Target) []string {
	env := t.Environment
	if env == "" {
		env = "<environment>"
	}
	var out []string
	if a.scope() == scopeEnvironment {
		if a.deployer() {
			out = append(out, env+"_deployer")
		}
		out = append(out, env+"_admin")
	}
	if a.readOnly() {
		out = append(out, ReadOnly)
	}
	return append(out, GlobalAdmin)
}

// orList joins "a, b or c".
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// Authorize returns nil when p may do a on t, else a *ForbiddenError.
func (p *Principal) Authorize(a Action, t Target) error {
	if p.Allowed(a, t) {
		return nil
	}
	return &ForbiddenError{User: p.User, Roles: p.Roles, Action: a, Target: t}
}

// DeployScopes says where roles may deploy, for `runway whoami`:
// "every environment of every project", "staging of project hello".
func DeployScopes(roles []Role) []string {
	out := []string{}
	for _, r := range roles {
		switch r.Kind {
		case KindGlobalAdmin:
			return []string{"every environment of every project"}
		case KindEnvAdmin, KindEnvDeployer:
			of := "every project"
			if r.Project != "" {
				of = "project " + r.Project
			}
			out = append(out, r.Environment+" of "+of)
		}
	}
	return out
}
