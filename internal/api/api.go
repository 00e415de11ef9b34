package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
)

// Releaser is what the API needs of the release engine.
type Releaser interface {
	Submit(ctx context.Context, req engine.Request) (*store.Release, error)
	Halt(ctx context.Context, id, reason string) error
}

// Records is what the API reads from the store.
type Records interface {
	GetRelease(ctx context.Context, id string) (*store.Release, error)
	ListReleases(ctx context.Context, f store.ReleaseFilter) ([]*store.Release, error)
	ListEvents(ctx context.Context, releaseID string) ([]*store.Event, error)
}

// Options configure the API.
type Options struct {
	Engine  Releaser
	Records Records
	// Environment reports whether an environment exists and is protected.
	Environment func(name string) (protected, ok bool)
	Logger      *slog.Logger
	// MaxBody is the largest request body; DefaultMaxBody when 0.
	MaxBody int64
}

type api struct{ Options }

// New returns the API's handler.
func New(o Options) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	a := &api{o}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/health", a.health)
	mux.HandleFunc("POST /v1/releases", a.createRelease)
	mux.HandleFunc("GET /v1/releases", a.listReleases)
	mux.HandleFunc("GET /v1/releases/{id}", a.getRelease)
	mux.HandleFunc("POST /v1/releases/{id}/halt", a.haltRelease)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, Problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no such endpoint: " + r.Method + " " + r.URL.Path})
	})
	return a.recoverer(mux)
}

// recoverer turns a handler panic into a 500 problem instead of a dropped
// connection, and logs it.
func (a *api) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				a.Logger.Error("api handler panic", "path", r.URL.Path, "panic", fmt.Sprint(v))
				writeProblem(w, r, Problem{Status: http.StatusInternalServerError})
			}
		}()
		h.ServeHTTP(w, r)
	})
}

func (a *api) health(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// requestProblem writes the problem for a body that could not be read or decoded.
func (a *api) requestProblem(w http.ResponseWriter, r *http.Request, err error) {
	var inv *invalidError
	switch {
	case errors.Is(err, errTooLarge):
		writeProblem(w, r, Problem{Type: typeTooLarge, Status: http.StatusRequestEntityTooLarge,
			Detail: fmt.Sprintf("request bodies are limited to %d bytes", a.MaxBody)})
	case errors.Is(err, errUnsupportedType):
		writeProblem(w, r, Problem{Type: typeUnsupported, Status: http.StatusUnsupportedMediaType, Detail: err.Error()})
	case errors.As(err, &inv):
		writeProblem(w, r, Problem{Type: typeBadRequest, Status: http.StatusBadRequest,
			Detail: "the request is invalid; see errors", Errors: inv.problems})
	default:
		writeProblem(w, r, Problem{Type: typeBadRequest, Status: http.StatusBadRequest, Detail: "read request body: " + err.Error()})
	}
}

func (a *api) createRelease(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, a.MaxBody, false)
	if err != nil {
		a.requestProblem(w, r, err)
		return
	}
	req, err := DecodeDeployRequest(b)
	if err != nil {
		a.requestProblem(w, r, err)
		return
	}
	protected := false
	if a.Environment != nil {
		p, ok := a.Environment(req.Environment)
		if !ok {
			writeProblem(w, r, Problem{Type: typeNotFound, Status: http.StatusNotFound,
				Detail: fmt.Sprintf("environment %q is not in the project's runway.hcl", req.Environment)})
			return
		}
		protected = p
	}
	rel, err := a.Engine.Submit(r.Context(), engine.Request{Environment: req.Environment, Protected: protected,
		Service: req.Service, Version: req.Version})
	if err != nil {
		a.Logger.Error("submit release", "err", err)
		writeProblem(w, r, Problem{Status: http.StatusInternalServerError, Detail: "the release could not be recorded"})
		return
	}
	w.Header().Set("Location", "/v1/releases/"+rel.ID)
	writeJSON(w, http.StatusAccepted, releaseView(rel, nil))
}

func (a *api) listReleases(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := store.ReleaseFilter{Environment: q.Get("environment"), Service: q.Get("service"), Limit: 50}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			writeProblem(w, r, Problem{Type: typeBadRequest, Status: http.StatusBadRequest, Detail: "limit must be 1-500"})
			return
		}
		f.Limit = n
	}
	f.Unfinished = q.Get("unfinished") == "true"
	rs, err := a.Records.ListReleases(r.Context(), f)
	if err != nil {
		a.Logger.Error("list releases", "err", err)
		writeProblem(w, r, Problem{Status: http.StatusInternalServerError})
		return
	}
	out := make([]Release, 0, len(rs))
	for _, rel := range rs {
		out = append(out, releaseView(rel, nil))
	}
	writeJSON(w, http.StatusOK, map[string]any{"releases": out})
}

func (a *api) getRelease(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	rel, err := a.Records.GetRelease(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		writeProblem(w, r, Problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no release " + id})
		return
	}
	if err != nil {
		a.Logger.Error("get release", "err", err)
		writeProblem(w, r, Problem{Status: http.StatusInternalServerError})
		return
	}
	evs, err := a.Records.ListEvents(r.Context(), id)
	if err != nil {
		a.Logger.Error("list release events", "err", err)
		writeProblem(w, r, Problem{Status: http.StatusInternalServerError})
		return
	}
	writeJSON(w, http.StatusOK, releaseView(rel, evs))
}

func (a *api) haltRelease(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(w, r, a.MaxBody, true)
	if err != nil {
		a.requestProblem(w, r, err)
		return
	}
	req, err := DecodeHaltRequest(b)
	if err != nil {
		a.requestProblem(w, r, err)
		return
	}
	id := r.PathValue("id")
	err = a.Engine.Halt(r.Context(), id, req.Reason)
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeProblem(w, r, Problem{Type: typeNotFound, Status: http.StatusNotFound, Detail: "no release " + id})
	case errors.Is(err, store.ErrFinished):
		writeProblem(w, r, Problem{Type: typeConflict, Status: http.StatusConflict, Detail: "release " + id + " has already finished"})
	case err != nil:
		a.Logger.Error("halt release", "err", err)
		writeProblem(w, r, Problem{Status: http.StatusInternalServerError})
	default:
		writeJSON(w, http.StatusAccepted, map[string]string{"id": id, "status": "halt requested"})
	}
}

// Release is the API's view of a release.
type Release struct {
	ID            string     `json:"id"`
	Environment   string     `json:"environment"`
	Service       string     `json:"service"`
	Version       string     `json:"version,omitempty"`
	CreatedBy     string     `json:"created_by,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	Digest        string     `json:"digest"`
	State         string     `json:"state"`
	Step          int        `json:"step"`
	Done          bool       `json:"done"`
	ErrorKind     string     `json:"error_kind,omitempty"`
	Error         string     `json:"error,omitempty"`
	HaltRequested bool       `json:"halt_requested,omitempty"`
	Served        int64      `json:"served"`
	Failed        int64      `json:"failed"`
	FinishedAt    *time.Time `json:"finished_at,omitempty"`
	Events        []Event    `json:"events,omitempty"`
}

// Event is the API's view of a release event.
type Event struct {
	At      time.Time `json:"at"`
	State   string    `json:"state"`
	Step    int       `json:"step"`
	Message string    `json:"message"`
}

func releaseView(r *store.Release, evs []*store.Event) Release {
	v := Release{ID: r.ID, Environment: r.Environment, Service: r.Service, Version: r.Version, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, Digest: r.Digest, State: r.State, Step: r.Step, Done: r.Done, ErrorKind: r.ErrorKind,
		Error: r.Error, HaltRequested: r.HaltRequested, Served: r.Served, Failed: r.Failed}
	if !r.FinishedAt.IsZero() {
		t := r.FinishedAt
		v.FinishedAt = &t
	}
	for _, e := range evs {
		v.Events = append(v.Events, Event{At: e.At, State: e.State, Step: e.Step, Message: e.Message})
	}
	return v
}
