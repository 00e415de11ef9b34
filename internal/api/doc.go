// Package api is the HTTP/JSON API of `runway server` under /v1: routing,
// bearer-token authentication, request decoding with size limits, and
// RFC 9457 application/problem+json errors. It declares Backend, the small
// interface it needs from the control plane (releases, status), and the wire
// types the client package shares.
package api
