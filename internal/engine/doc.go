// Package engine is Runway's release engine: a durable state machine that
// moves each release through
//
//	Validate → Lock → ValidateResources → Deploy → CheckHealthy → CleanUpSuccess → ReleaseLock → Success
//
// and, on any error, CleanUpFailure → ReleaseLockFailure → FailureClean | FailureDirty.
//
// The state, and within a state the index of the strategy step, is written to
// the store before the action it names runs, and every action is idempotent,
// so an engine started on the same store resumes each unfinished release by
// re-running the step it was on. The engine declares the Driver interface it
// needs from a target; strategies (package strategy) decide the steps.
package engine
