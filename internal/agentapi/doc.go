// Package agentapi is the contract of the agent API (docs/agent-api.md):
// the types on its wire (group specs and status, instances, health checks,
// logs, routes and their keys and limits, statistics, counters, health and
// generations, problems, the fencing headers) and Client, its typed client
// with its call timeouts and fencing context. The agent serves it; the
// local driver, the server and the CLI call it without linking the
// supervisor or the proxy. It is a leaf: it imports nothing of Runway's.
//
// Read in this order: group.go (what a group is and how it is observed),
// route.go (what the proxy serves), logs.go, api.go (health, statistics,
// problems), fence.go, client.go.
package agentapi
