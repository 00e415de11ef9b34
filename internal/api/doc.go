// Package api is the HTTP/JSON API of `runway server` under /v1: routing,
// bearer-token authentication, request decoding with size limits and the
// validation of request bodies, and RFC 9457 application/problem+json
// errors. It declares Backend and Identity, the small interfaces it needs
// from the control plane (releases, status, users, tokens, audit). The
// types on its wire live in internal/apiwire, which the client shares
// without linking these handlers.
package api
