package dashboard

import (
	"bytes"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/client"
)

// pages are the templates that render a whole page (layout.html around
// them); partials are rendered alone too (the live release timeline).
var pages = []string{"login", "projects", "environment", "service", "release", "logs", "alarms", "secrets", "audit", "confirm", "error"}

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"agoPtr": func(t *time.Time) string {
		if t == nil || t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05")
	},
	"pct":   func(f float64) string { return fmt.Sprintf("%.1f%%", f*100) },
	"ms":    func(s float64) string { return fmt.Sprintf("%.0f ms", s*1000) },
	"rate":  func(f float64) string { return fmt.Sprintf("%.1f", f) },
	"short": func(s string) string { return shortID(s) },
	"join":  strings.Join,
	"width": func(w int) string { return fmt.Sprintf("w%d", int(math.Round(float64(min(max(w, 0), 100))/5)*5)) },
	"stateClass": func(s string) string {
		switch s {
		case "Success", "OK", "healthy", "delivered":
			return "ok"
		case "FailureClean", "FailureDirty", "ALERT", "unhealthy", "failed", "crashed":
			return "bad"
		}
		return "run"
	},
	"path": path.Join,
}

func shortID(s string) string {
	if len(s) > 10 {
		return s[len(s)-10:]
	}
	return s
}

func parseTemplates() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, p := range pages {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/partials.html", "templates/"+p+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard template %s: %w", p, err)
		}
		out[p] = t
	}
	return out, nil
}

// frame is what the layout reads besides the page's own data.
type frame struct {
	Title string
	User  string
	Roles []string
	CSRF  string
	// CanAudit shows the audit log's link (auth.ActionAuditRead).
	CanAudit bool
	Crumbs   []crumb
	// Refresh makes the page reload every few seconds without JavaScript
	// (a release in progress, logs followed).
	Refresh bool
	Page    any
	s       *session
}

type crumb struct{ Name, Href string }

// Can is the role table's answer for the layout's and pages' buttons.
func (f *frame) Can(action, project, env string) bool {
	return f.s != nil && f.s.can(action, project, env)
}

func (h *Handler) render(w http.ResponseWriter, status int, page string, s *session, data any) {
	h.renderFrame(w, status, page, &frame{Page: data, s: s})
}

func (h *Handler) renderFrame(w http.ResponseWriter, status int, page string, f *frame) {
	if f.s != nil {
		f.User, f.Roles, f.CSRF = f.s.who.User, f.s.who.Roles, f.s.csrf
		f.CanAudit = f.s.can("audit.read", "", "")
	}
	if f.Title == "" {
		f.Title = page
	}
	var buf bytes.Buffer
	if err := h.tmpl[page].Execute(&buf, f); err != nil {
		h.opts.Logger.Error("render dashboard page", "page", page, "err", err)
		http.Error(w, "render page: internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// fail renders an API error as a page with the API's status and words.
func (h *Handler) fail(w http.ResponseWriter, s *session, err error) {
	status := http.StatusBadGateway
	var ce *client.Error
	if asClientError(err, &ce) && ce.Status != 0 {
		status = ce.Status
	}
	h.renderFrame(w, status, "error", &frame{Title: "error", s: s, Page: map[string]any{"Status": status, "Text": http.StatusText(status), "Detail": err.Error()}})
}
