package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/store"
)

// envelope is what every mutating request's body carries besides its own
// fields, and where a rule reads its target from a body.
type envelope struct {
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
	Project     string    `json:"project"`
	Environment string    `json:"environment"`
	Service     string    `json:"service"`
}

// guard is the one place every request passes: it authenticates the
// caller, checks a mutating request's digest, freshness and id, authorizes
// the request by its rule (auth.Rules) and appends the audit entry of every
// mutating request, allowed or not.
func (h *Handler) guard(rule auth.Rule, next func(http.ResponseWriter, *http.Request, string)) http.HandlerFunc {
	mutating := rule.Method != http.MethodGet && rule.Method != http.MethodHead
	// Every mutating request is audited, and so is every read of a
	// secret's value, allowed or refused.
	audited := mutating || rule.Action == auth.ActionSecretRead
	return func(w http.ResponseWriter, r *http.Request) {
		if rule.Action == auth.ActionPublic {
			next(w, r, "")
			return
		}
		src := sourceOf(r)
		if wait := h.limiter.blocked(src); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			writeProblem(w, apiwire.Problemf(http.StatusTooManyRequests, apiwire.KindTooManyAttempts, "too many failed authentications from %s; try again in %s", src, wait.Round(time.Second)))
			return
		}
		p, err := h.opts.Identity.Authenticate(r.Context(), r.Header.Get("Authorization"))
		if err != nil && store.Unavailable(err) {
			// The token could not be checked: not a failed authentication.
			h.fail(w, r, err)
			return
		}
		if err != nil {
			h.limiter.fail(src)
			w.Header().Set("WWW-Authenticate", `Bearer realm="runway"`)
			writeProblem(w, unauthorized(err))
			return
		}
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		rec := apiwire.AuditEntry{Actor: p.User, TokenID: p.TokenID, Source: src, Action: string(rule.Action), Target: r.URL.Path,
			RequestDigest: trunc(r.Header.Get(apiwire.DigestHeader))}
		var env envelope
		var body []byte
		if mutating {
			if body, err = h.checkBody(r); err != nil {
				var prob *apiwire.Problem
				if errors.As(err, &prob) {
					h.audit(r, rec, prob.Status, prob.Kind)
				}
				h.fail(w, r, err)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			_ = json.Unmarshal(body, &env) // the handler's strict decoding reports what is wrong
		}
		target, err := h.targetOf(r, rule, env)
		if err != nil {
			var prob *apiwire.Problem
			if mutating && errors.As(err, &prob) {
				h.audit(r, rec, prob.Status, prob.Kind)
			}
			h.fail(w, r, err)
			return
		}
		rec.Project, rec.Environment, rec.Target = target.Project, target.Environment, auditTarget(r, env)
		if err := p.Authorize(rule.Action, target); err != nil {
			prob := apiwire.Problemf(http.StatusForbidden, apiwire.KindForbidden, "%v", err)
			if audited {
				h.audit(r, rec, prob.Status, prob.Kind)
			}
			writeProblem(w, prob)
			return
		}
		if !mutating {
			if !audited {
				next(w, r, p.User)
				return
			}
			sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
			next(sw, r, p.User)
			h.audit(r, rec, sw.status, sw.kind)
			return
		}
		// The handler decodes and validates the body, then calls admit,
		// which checks its freshness and id (checkRequest) before anything
		// acts on it; every outcome is audited.
		c := &call{rule: rule, env: env, body: body, rec: rec}
		r = r.WithContext(context.WithValue(r.Context(), callKey{}, c))
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next(sw, r, p.User)
		if sw.status < 300 && !c.admitted {
			h.opts.Logger.Error("api handler acted without admit: its request id and time were not checked", "route", rule.Route())
		}
		if !c.audited {
			h.audit(r, rec, sw.status, sw.kind)
		}
	}
}

// call is a mutating request on its way through the guard.
type call struct {
	rule     auth.Rule
	env      envelope
	body     []byte
	rec      apiwire.AuditEntry
	admitted bool
	// audited: an Identity change recorded rec in its own transaction.
	audited bool
}

// auditRecord is the audit entry the guard prepared for this request, for
// an Identity change to store in the transaction of the change itself
// (with its outcome); calling done tells the guard it is recorded.
func (h *Handler) auditRecord(r *http.Request) (apiwire.AuditEntry, func()) {
	c, _ := r.Context().Value(callKey{}).(*call)
	if c == nil {
		return apiwire.AuditEntry{}, func() {}
	}
	e := c.rec
	e.At = h.opts.Now()
	return e, func() { c.audited = true }
}

// Outcome is how the audit log writes a response: "201 Created",
// "403 Forbidden", "409 RequestIDReused".
func Outcome(status int, kind string) string {
	if kind == "" {
		kind = http.StatusText(status)
	}
	return strconv.Itoa(status) + " " + kind
}

type callKey struct{}

// admit checks a decoded, valid mutating request's freshness and id; on a
// refusal it answers the request and returns false. Every mutating handler
// calls it before acting.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request) bool {
	c, _ := r.Context().Value(callKey{}).(*call)
	if c == nil {
		h.fail(w, r, errors.New("admit outside the guard"))
		return false
	}
	if err := h.checkRequest(r.Context(), c.rule, c.env, c.body); err != nil {
		h.fail(w, r, err)
		return false
	}
	c.admitted = true
	return true
}

func unauthorized(err error) *apiwire.Problem {
	hint := "run `runway login`, pass --token or set RUNWAY_TOKEN"
	kind := apiwire.KindUnauthorized
	switch {
	case errors.Is(err, auth.ErrExpired):
		kind, hint = apiwire.KindTokenExpired, "ask an admin for a new token, or make one before it expires (runway token create)"
	case errors.Is(err, auth.ErrRevoked):
		kind, hint = apiwire.KindTokenRevoked, "ask an admin for a new token"
	case errors.Is(err, auth.ErrDisabled):
		kind, hint = apiwire.KindUserDisabled, "ask an admin to enable the user again"
	}
	return apiwire.Problemf(http.StatusUnauthorized, kind, "%v: %s", err, hint)
}

// checkBody reads a mutating request's body and checks it against the
// digest the client computed over it.
func (h *Handler) checkBody(r *http.Request) ([]byte, error) {
	body, err := readBody(r)
	if err != nil {
		return nil, err
	}
	got := r.Header.Get(apiwire.DigestHeader)
	if got == "" {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindDigestMissing, "header %s is required on every change: the SHA-256 of the body as sent, \"sha-256=:<base64>:\" (RFC 9530); runway and internal/client send it", apiwire.DigestHeader)
	}
	if got != apiwire.ContentDigest(body) {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindDigestMismatch, "the body does not match its %s header: it was altered after the client computed the digest (or the digest is not \"sha-256=:<base64>:\"); send the request again", apiwire.DigestHeader)
	}
	return body, nil
}

// checkRequest refuses a request outside the replay window and a request id
// already used, each with its own kind.
func (h *Handler) checkRequest(ctx context.Context, rule auth.Rule, env envelope, body []byte) error {
	if err := checkFreshness(env.RequestID, env.RequestedAt, h.opts.Now(), h.opts.ReplayWindow); err != nil {
		return err
	}
	dig := requestDigest(body)
	prev, made, err := h.opts.Identity.RememberRequest(ctx, env.RequestID, dig)
	if err != nil {
		return err
	}
	if made != "" {
		made = " for " + made
	}
	switch {
	case prev == "":
		return nil
	case prev != dig:
		return apiwire.Problemf(http.StatusConflict, apiwire.KindRequestIDReused, "request id %s was already used%s with a different request; send a new request id for a new request", env.RequestID, made)
	case !rule.Idempotent:
		return apiwire.Problemf(http.StatusConflict, apiwire.KindRequestIDReused, "request id %s was already used%s: this request was already applied; send a new request id to make it again", env.RequestID, made)
	}
	return nil // the same request again: the handler answers what it made
}

// requestDigest identifies what a request asks for, whenever it was sent:
// its JSON without requested_at (a retry may refresh the time).
func requestDigest(body []byte) string {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return apiwire.ContentDigest(body)
	}
	delete(m, "requested_at")
	b, _ := json.Marshal(m)
	return apiwire.ContentDigest(b)
}

// targetOf reads a request's target where its rule says.
func (h *Handler) targetOf(r *http.Request, rule auth.Rule, env envelope) (auth.Target, error) {
	switch rule.Target {
	case auth.FromPath:
		return auth.Target{Project: r.PathValue("project"), Environment: r.PathValue("env")}, nil
	case auth.FromQuery:
		q := r.URL.Query()
		return auth.Target{Project: q.Get("project"), Environment: q.Get("environment")}, nil
	case auth.FromBody:
		return auth.Target{Project: env.Project, Environment: env.Environment}, nil
	case auth.FromReleasePath:
		id := r.PathValue("id")
		if !requestIDRe.MatchString(id) {
			return auth.Target{}, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "%q is not a release id", trunc(id))
		}
		return h.opts.Identity.ReleaseTarget(r.Context(), id)
	}
	return auth.Target{}, nil
}

func auditTarget(r *http.Request, env envelope) string {
	if env.Project != "" && env.Environment != "" && env.Service != "" {
		return env.Project + "/" + env.Environment + "/" + env.Service
	}
	if r.URL.RawQuery != "" {
		// A secret read names its service and version in the query.
		if t := r.URL.Path + "?" + r.URL.RawQuery; len(t) <= 512 {
			return t
		}
	}
	return r.URL.Path
}

func (h *Handler) audit(r *http.Request, e apiwire.AuditEntry, status int, kind string) {
	e.At = h.opts.Now()
	e.Outcome = Outcome(status, kind)
	// The mutation is done; a failed append is logged loudly (the response
	// stands, and `runway audit verify` still checks what was written).
	if err := h.opts.Identity.Audit(context.WithoutCancel(r.Context()), e); err != nil {
		h.opts.Logger.Error("append audit entry failed", "action", e.Action, "actor", e.Actor, "target", e.Target, "err", err)
	}
}

// sourceOf is the caller's address without its port.
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// statusWriter remembers the status and problem kind a handler answered.
type statusWriter struct {
	http.ResponseWriter
	status int
	kind   string
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// noteKind is called by writeProblem through the writer.
func (s *statusWriter) noteKind(kind string) { s.kind = kind }

type kindNoter interface{ noteKind(string) }
