// Package apiwire is the contract of the server's API (docs/api.md): the
// request and response bodies of /v1 (deploys, rollbacks, halts, projects,
// releases, status, users, tokens, audit), Problem, the problem+json error
// body with its constructor, and the Content-Digest header. internal/api
// serves it, internal/client calls it; neither needs the other. It is a
// leaf: it imports only internal/config (the diagnostics of a problem).
package apiwire
