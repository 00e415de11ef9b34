package dashboard

import (
	"context"
	"embed"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the server mounts the dashboard.
const Prefix = "/ui/"

// Defaults of Options.
const (
	DefaultIdleTimeout = 30 * time.Minute
	DefaultMaxAge      = 12 * time.Hour
	// LoginCodeLifetime is how long a code of `runway dashboard` may wait
	// for its one use.
	LoginCodeLifetime = 2 * time.Minute
)

// Token names the dashboard gives the tokens it makes; `runway token list`
// shows them.
const (
	LoginCodeName = "dashboard-login"
	SessionName   = "dashboard-session"
)

// TokenTimes tells when a token was made and last used, read before the
// API sees the request (which updates the last use): the idle limit of a
// session is measured on it.
type TokenTimes interface {
	TokenTimes(ctx context.Context, token string) (TokenInfo, error)
}

// TokenInfo is what TokenTimes returns. LastUsed is kept to the minute by
// the API (auth.Authenticator), which is the idle limit's resolution.
type TokenInfo struct {
	ID                string
	Created, LastUsed time.Time
}

// Options configure the dashboard.
type Options struct {
	// API is the server's /v1 handler: every read and action goes through it.
	API    http.Handler
	Tokens TokenTimes
	Logger *slog.Logger
	Now    func() time.Time
	// IdleTimeout ends a session unused that long; MaxAge ends every
	// session that long after its login. Defaults above.
	IdleTimeout, MaxAge time.Duration
	// LivePoll is how often a live release page looks at its release
	// (default 300ms): an in-process API call, sent on only when it changed.
	LivePoll time.Duration
}

// Handler serves the dashboard under Prefix.
type Handler struct {
	opts Options
	mux  *http.ServeMux
	tmpl map[string]*template.Template
	seen *lastSeen
}

// New returns the dashboard handler.
func New(opts Options) (*Handler, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = DefaultMaxAge
	}
	if opts.LivePoll <= 0 {
		opts.LivePoll = 300 * time.Millisecond
	}
	tmpl, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	h := &Handler{opts: opts, mux: http.NewServeMux(), tmpl: tmpl, seen: &lastSeen{maxAge: opts.MaxAge}}
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix(Prefix+"static/", http.FileServer(http.FS(static)))
	h.mux.Handle("GET "+Prefix+"static/", files)
	h.mux.HandleFunc("GET "+Prefix+"login", h.loginPage)
	h.mux.HandleFunc("POST "+Prefix+"login", h.login)
	h.mux.HandleFunc("POST "+Prefix+"logout", h.withSession(h.logout))
	h.mux.HandleFunc("GET "+Prefix+"{$}", h.withSession(h.projects))
	h.mux.HandleFunc("GET "+Prefix+"p/{project}/e/{env}/{$}", h.withSession(h.environment))
	h.mux.HandleFunc("GET "+Prefix+"p/{project}/e/{env}/s/{service}/{$}", h.withSession(h.service))
	h.mux.HandleFunc("GET "+Prefix+"p/{project}/e/{env}/s/{service}/logs", h.withSession(h.logs))
	h.mux.HandleFunc("GET "+Prefix+"p/{project}/e/{env}/s/{service}/logs/live", h.withSession(h.logsLive))
	h.mux.HandleFunc("GET "+Prefix+"p/{project}/e/{env}/alarms", h.withSession(h.alarms))
	h.mux.HandleFunc("GET "+Prefix+"p/{project}/e/{env}/secrets", h.withSession(h.secrets))
	h.mux.HandleFunc("GET "+Prefix+"r/{id}", h.withSession(h.release))
	h.mux.HandleFunc("GET "+Prefix+"r/{id}/live", h.withSession(h.releaseLive))
	h.mux.HandleFunc("GET "+Prefix+"audit", h.withSession(h.audit))
	h.mux.HandleFunc("POST "+Prefix+"actions/rollback", h.withSession(h.rollback))
	h.mux.HandleFunc("POST "+Prefix+"actions/halt", h.withSession(h.halt))
	h.mux.HandleFunc("POST "+Prefix+"actions/maintenance", h.withSession(h.maintenance))
	h.mux.HandleFunc(Prefix, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no dashboard page "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	})
	return h, nil
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	// Pages of the dashboard are never framed, never cached, and run only
	// the dashboard's own script.
	hd.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("X-Content-Type-Options", "nosniff")
	// same-origin, not no-referrer: with no-referrer browsers send "Origin: null"
	// on form posts, which the origin check cannot tell from another site.
	hd.Set("Referrer-Policy", "same-origin")
	hd.Set("Cache-Control", "no-store")
	defer func() {
		if v := recover(); v != nil {
			h.opts.Logger.Error("dashboard handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	}
	h.mux.ServeHTTP(w, r)
}

// maxForm bounds a form's body: the dashboard's forms are a few fields.
const maxForm = 64 << 10
