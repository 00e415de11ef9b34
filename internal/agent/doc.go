// Package agent is `runway agent`, the data plane of the local target on
// one machine: it wires the process supervisor and the HTTP proxy (through
// the small interfaces declared here) and serves the agent API, an
// HTTP/JSON API on loopback protected by a bearer token. The API's wire
// types and its typed client (used by the CLI and the local driver) live
// in internal/agentapi, so a caller does not link the data plane.
package agent
