package apiwire

import (
	"fmt"
	"net/http"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/httpjson"
)

// Problem is an RFC 9457 problem detail. The API's backends return it (or wrap it) to
// choose the HTTP status and type a client sees; any other error becomes a
// 500 whose detail is logged, not sent.
type Problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	// Kind is Runway's error kind (LockExists, BadRelease, ...) when there is one.
	Kind string `json:"kind,omitempty"`
	// Diagnostics locate what is wrong in the request's manifests
	// (file:line:col), as `runway validate` prints them.
	Diagnostics []config.DiagnosticJSON `json:"diagnostics,omitempty"`
}

func (p *Problem) Error() string {
	if p.Detail != "" {
		return p.Detail
	}
	return p.Title
}

// Problemf builds a problem with a formatted detail.
func Problemf(status int, kind, format string, args ...any) *Problem {
	slug := kind
	if slug == "" {
		slug = http.StatusText(status)
	}
	return &Problem{
		Type:   httpjson.TypeURI(slug),
		Title:  http.StatusText(status),
		Status: status,
		Detail: fmt.Sprintf(format, args...),
		Kind:   kind,
	}
}
