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
// re-running the step it was on. The engine consumes the contracts of package
// target (each release on the target of its environment, from Drivers, the
// registry the server builds once); strategies (package strategy) decide the
// steps, within the target's declared Capabilities.
package engine
