package api

import (
	"errors"
	"net/http"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/store"
)

// writeProblem sends err as application/problem+json.
func writeProblem(w http.ResponseWriter, err error) {
	var p *apiwire.Problem
	if !errors.As(err, &p) && store.Unavailable(err) {
		p = storeUnavailable()
	}
	if p != nil && p.Kind == apiwire.KindStoreUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	if p == nil {
		p = &apiwire.Problem{Type: httpjson.TypeURI("internal"), Title: "Internal Server Error", Status: http.StatusInternalServerError,
			Detail: "the server failed; its log has the cause"}
	}
	if n, ok := w.(kindNoter); ok {
		n.noteKind(p.Kind)
	}
	httpjson.WriteProblem(w, p.Status, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }

// storeUnavailable is the problem of a request the store could not serve:
// it is the store that is down, not the request that is wrong.
func storeUnavailable() *apiwire.Problem {
	return apiwire.Problemf(http.StatusServiceUnavailable, apiwire.KindStoreUnavailable,
		"the server cannot reach its store (its log has the cause): retry in a few seconds; running services keep serving, and releases pause at their next step and resume once the store is back (docs/operations.md, \"PostgreSQL\")")
}
