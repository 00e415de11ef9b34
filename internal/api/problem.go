package api

import (
	"errors"
	"net/http"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/httpjson"
)

// writeProblem sends err as application/problem+json.
func writeProblem(w http.ResponseWriter, err error) {
	var p *apiwire.Problem
	if !errors.As(err, &p) {
		p = &apiwire.Problem{Type: httpjson.TypeURI("internal"), Title: "Internal Server Error", Status: http.StatusInternalServerError,
			Detail: "the server failed; its log has the cause"}
	}
	if n, ok := w.(kindNoter); ok {
		n.noteKind(p.Kind)
	}
	httpjson.WriteProblem(w, p.Status, p)
}

func writeJSON(w http.ResponseWriter, status int, v any) { httpjson.Write(w, status, v) }
