package engine

import (
	"errors"
	"fmt"
)

// The kinds of release failure; test with errors.Is.
var (
	ErrBadRelease     = errors.New("BadRelease")
	ErrLockExists     = errors.New("LockExists")
	ErrDeploy         = errors.New("DeployError")
	ErrHalted         = errors.New("Halted")
	ErrTimeout        = errors.New("Timeout")
	ErrAnalysisFailed = errors.New("AnalysisFailed")
	// ErrStoreBehind: the target refused to act because this server's store
	// is older than what the target already saw (a restored backup, a lost
	// WAL). A driver wraps it; the engine then acts no more on the service
	// (docs/design.md, "Fencing").
	ErrStoreBehind = errors.New("StoreBehind")
)

var kinds = map[string]error{}

func init() {
	for _, k := range []error{ErrBadRelease, ErrLockExists, ErrDeploy, ErrHalted, ErrTimeout, ErrAnalysisFailed, ErrStoreBehind} {
		kinds[k.Error()] = k
	}
}

// Error is why a release failed: a Kind (one of the Err values above) and a
// message for people. errors.Is(err, ErrHalted) and the like work on it.
type Error struct {
	Kind error
	Msg  string
	// transient marks a driver error that may pass when the step is tried
	// again (see Transient); it is not persisted.
	transient bool
}

func (e *Error) Error() string { return e.Kind.Error() + ": " + e.Msg }

// Unwrap returns the kind.
func (e *Error) Unwrap() error { return e.Kind }

func newError(kind error, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// asError classifies err: a *Error keeps its kind, anything else is a
// DeployError.
func asError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Kind: ErrDeploy, Msg: err.Error()}
}

// errorFromRecord rebuilds a persisted error.
func errorFromRecord(kind, msg string) *Error {
	if kind == "" {
		return nil
	}
	k, ok := kinds[kind]
	if !ok {
		k = ErrDeploy
	}
	return &Error{Kind: k, Msg: msg}
}

// Transient is implemented by driver errors that may pass when tried again:
// the target was unreachable, did not answer in time, or answered with a
// server error. The engine retries the step of such an error until the
// state's deadline, where any other error of a deploy step fails the release.
type Transient interface {
	Transient() bool
}

// isTransient reports whether err, or an error it wraps, is transient.
func isTransient(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.transient
	}
	var t Transient
	return errors.As(err, &t) && t.Transient()
}
