// Package supervisor runs the instances of service groups on this machine:
// it assigns ports, starts each instance in its own process group with the
// resolved environment, checks its health, restarts it with backoff, stops it
// gracefully, writes its output to rotating log files, persists what it runs
// to a state file and re-adopts still-running instances after a restart of
// the agent. It knows nothing of HTTP: the agent package exposes it. A
// group's spec and status, instances and log queries are the agent API's
// types (internal/agentapi), which it names directly.
package supervisor
