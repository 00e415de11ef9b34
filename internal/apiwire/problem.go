package apiwire

import (
	"fmt"
	"net/http"

	"github.com/runwayhq/runway/internal/config"
)

// ProblemTypeBase prefixes the type URI of every problem Runway returns.
const ProblemTypeBase = "https://runway.dev/problems/"

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
		Type:   ProblemTypeBase + slugify(slug),
		Title:  http.StatusText(status),
		Status: status,
		Detail: fmt.Sprintf(format, args...),
		Kind:   kind,
	}
}

func slugify(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if i > 0 && len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
			out = append(out, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			out = append(out, c)
		default:
			if len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
		}
	}
	return string(out)
}
