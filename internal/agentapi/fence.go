package agentapi

import (
	"context"
	"errors"
	"net/http"

	"github.com/runwayhq/runway/internal/httpjson"
)

// The headers and problem type of fencing (docs/design.md, "Fencing"): a
// mutating call returns the service's new generation in GenerationHeader;
// a caller sends the generation it recorded in ExpectGenerationHeader, and
// the agent refuses (409 ProblemStoreBehind) a call whose expectation is
// below the highest one a caller already sent.
const (
	// GenerationHeader carries the service's generation after a mutating call.
	GenerationHeader = "Runway-Generation"
	// ExpectGenerationHeader carries the generation the caller has recorded
	// for the service (at least semantics).
	ExpectGenerationHeader = "Runway-Expect-Generation"
	// ProblemStoreBehind is the problem type slug of a fenced call.
	ProblemStoreBehind = "store-behind"
)

// Fence is how a caller of the agent API takes part in fencing: the client
// sends Expect() as Runway-Expect-Generation with every mutating call made
// with a context from WithFence, and reports the Runway-Generation of each
// answer to Saw.
type Fence interface {
	// Expect is the generation of the service the caller has durably
	// recorded (0 when it has none).
	Expect() int64
	// Saw receives the generation a mutating call returned; the caller
	// records it (durably) so that it sends it with its next calls.
	Saw(ctx context.Context, generation int64)
}

type fenceKey struct{}

// WithFence returns a context whose mutating agent calls carry f.
func WithFence(ctx context.Context, f Fence) context.Context {
	return context.WithValue(ctx, fenceKey{}, f)
}

func fenceFrom(ctx context.Context) Fence {
	f, _ := ctx.Value(fenceKey{}).(Fence)
	return f
}

// IsStoreBehind reports whether err is the agent's refusal of a caller
// whose store is behind (409 store-behind).
func IsStoreBehind(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusConflict && e.Type == httpjson.TypeURI(ProblemStoreBehind)
}
