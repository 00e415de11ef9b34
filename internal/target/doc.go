// Package target declares what a target (local, docker, kubernetes, aws)
// implements and the release engine consumes: small contracts, each one
// concern, and the Capabilities a target declares so that the planner and
// validation refuse what it cannot do before a release starts.
//
// Read in this order:
//
//   - target.go: Target, the contracts composed; ServiceRef; the errors a
//     target returns (ErrUnsupported, ErrStoreBehind).
//   - capabilities.go: Capabilities (weights, weighted groups, statistics
//     windows, preview, task re-attach, group-name budget) and the views of
//     it the planner (strategy.Limits) and validation (config.TargetLimits)
//     read, so no number of the data plane is copied.
//   - workloads.go: groups of instances (ensure, scale, observe, delete,
//     list), with the drain on every call that stops instances.
//   - traffic.go: weighted routes and the preview route.
//   - metrics.go: window statistics and request totals.
//   - tasks.go: one-off tasks, started once per id and then observed, so a
//     task a crash interrupted is re-attached, never run twice.
//   - logs.go: instance logs read or followed by group and instance, also
//     of deleted groups; crash reports.
//
// Every call is idempotent: the engine calls it again with the same
// arguments after a crash. Package fake is an in-process target driven by
// its spec; package targettest is the conformance suite every target runs
// in its own package.
package target
