package api

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/runwayhq/runway/internal/apiwire"
)

// writeProblem sends err as application/problem+json.
func writeProblem(w http.ResponseWriter, err error) {
	var p *apiwire.Problem
	if !errors.As(err, &p) {
		p = &apiwire.Problem{Type: apiwire.ProblemTypeBase + "internal", Title: "Internal Server Error", Status: http.StatusInternalServerError,
			Detail: "the server failed; its log has the cause"}
	}
	if n, ok := w.(kindNoter); ok {
		n.noteKind(p.Kind)
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}
