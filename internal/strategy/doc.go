// Package strategy plans how a release rolls out: recreate, rolling,
// blue_green and canary each turn a service's deploy policy and the groups
// currently running into a Plan, a list of Steps per engine phase.
//
// It is pure: no I/O, no clock, no randomness. Steps are plain data (they
// marshal to JSON with a "kind" tag) so the release engine can persist the
// plan and the index of the step it is on, and resume after a crash by
// re-running that step. Every step is idempotent by construction: it states
// the end state ("group X has N instances", "routes are exactly these"),
// never a delta.
package strategy
