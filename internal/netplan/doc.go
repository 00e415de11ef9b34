// Package netplan plans the private address space of a project: one block per
// environment-region, one per availability zone inside it and one subnet per
// tier inside each zone. It is pure: it reads a Project's network settings and
// a lock of earlier allocations and returns the plan and the lock to keep.
//
// Allocation is deterministic (environments in declaration order, zones in
// order, tiers in order, each taking the lowest free aligned block) and stable:
// anything recorded in the lock keeps its range, so adding an environment, a
// region, a zone or a tier never moves an existing network. Reserved ranges are
// never allocated, and every error names the ranges involved.
package netplan
