// Package auth answers who is calling and what they may do where.
//
// Read in this order:
//   - token.go: API tokens. "rwy_" and 64 hex digits (256 bits from
//     crypto/rand); the store keeps only their SHA-256, compared in constant
//     time. A token has an id (shown in lists and the audit log, never the
//     token), an optional expiry, and a revocation that takes effect on the
//     next request: every request reads the token's row.
//   - role.go: roles. global_admin; read_only; <environment>_admin;
//     <environment>_deployer; each but global_admin optionally scoped to one
//     project ("staging_deployer@hello").
//   - matrix.go: the authorization rules, one table: every route of the
//     server API names its action and where its target (project,
//     environment) comes from. The API middleware consults it for every
//     request; a test walks every registered route × every role against it,
//     so a route without a rule fails.
//   - authn.go: Authenticator, from a bearer token to a Principal, and
//     Bootstrap, which creates user admin on a server's first start.
package auth
