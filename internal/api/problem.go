package api

import (
	"encoding/json"
	"net/http"
)

// Problem is an RFC 9457 problem detail.
type Problem struct {
	Type     string   `json:"type"`
	Title    string   `json:"title"`
	Status   int      `json:"status"`
	Detail   string   `json:"detail,omitempty"`
	Instance string   `json:"instance,omitempty"`
	Errors   []string `json:"errors,omitempty"` // every problem of a rejected request
}

// problemType URIs name the kinds of problem clients may act on.
const (
	typeBlank       = "about:blank"
	typeBadRequest  = "https://runway.dev/problems/bad-request"
	typeTooLarge    = "https://runway.dev/problems/body-too-large"
	typeNotFound    = "https://runway.dev/problems/not-found"
	typeConflict    = "https://runway.dev/problems/conflict"
	typeUnsupported = "https://runway.dev/problems/unsupported-media-type"
)

func writeProblem(w http.ResponseWriter, r *http.Request, p Problem) {
	if p.Type == "" {
		p.Type = typeBlank
	}
	if p.Title == "" {
		p.Title = http.StatusText(p.Status)
	}
	if r != nil && p.Instance == "" {
		p.Instance = r.URL.Path
	}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(p.Status)
	_ = json.NewEncoder(w).Encode(p)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
