package dashboard

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
)

// confirmView is the page that asks before an action: every field of the
// form comes back with confirm=yes, and a request id chosen here, so a
// form sent twice makes one rollback (the API's rollbacks are idempotent
// per request id).
type confirmView struct {
	Action, Question, Back string
	Fields                 map[string]string
}

func (h *Handler) confirm(w http.ResponseWriter, r *http.Request, s *session, action, question, back string, keys ...string) bool {
	if r.PostFormValue("confirm") == "yes" {
		return true
	}
	v := confirmView{Action: action, Question: question, Back: safeNext(back), Fields: map[string]string{"request_id": client.NewRequestID()}}
	for _, k := range keys {
		v.Fields[k] = r.PostFormValue(k)
	}
	h.renderFrame(w, http.StatusOK, "confirm", &frame{Title: "confirm", s: s, Page: v})
	return false
}

// rollback makes a rollback through POST /v1/rollbacks.
func (h *Handler) rollback(w http.ResponseWriter, r *http.Request, s *session) {
	p, e, svc, to := r.PostFormValue("project"), r.PostFormValue("environment"), r.PostFormValue("service"), r.PostFormValue("to")
	back := Prefix + "p/" + url.PathEscape(p) + "/e/" + url.PathEscape(e) + "/s/" + url.PathEscape(svc) + "/"
	target := "the previous successful release"
	if to != "" {
		target = "release " + to
		if v := r.PostFormValue("version"); v != "" {
			target += " (version " + v + ")"
		}
	}
	if !h.confirm(w, r, s, "rollback", "Roll back "+svc+" in "+e+" of "+p+" to "+target+"?", back, "project", "environment", "service", "to", "version") {
		return
	}
	req := apiwire.RollbackRequest{Project: p, Environment: e, Service: svc, To: to, Confirmed: true,
		RequestID: r.PostFormValue("request_id"), RequestedAt: h.opts.Now().UTC()}
	if req.RequestID == "" {
		req.RequestID = client.NewRequestID()
	}
	rel, err := s.c.Rollback(apiCtx(r), req)
	if err != nil {
		h.fail(w, s, err)
		return
	}
	http.Redirect(w, r, Prefix+"r/"+url.PathEscape(rel.ID), http.StatusSeeOther)
}

// halt halts a release through POST /v1/releases/{id}/halt.
func (h *Handler) halt(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PostFormValue("release")
	back := Prefix + "r/" + url.PathEscape(id)
	if !h.confirm(w, r, s, "halt", "Halt release "+id+"? It stops at its next step and cleans up: the serving version keeps all traffic.", back, "release", "reason") {
		return
	}
	reason := strings.TrimSpace(r.PostFormValue("reason"))
	if reason == "" {
		reason = "halted from the dashboard by " + s.who.User
	}
	if err := s.c.Halt(apiCtx(r), id, reason); err != nil {
		h.fail(w, s, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// maintenance turns a service's maintenance page on or off through POST
// /v1/projects/{p}/environments/{e}/services/{s}/maintenance.
func (h *Handler) maintenance(w http.ResponseWriter, r *http.Request, s *session) {
	p, e, svc := r.PostFormValue("project"), r.PostFormValue("environment"), r.PostFormValue("service")
	on := r.PostFormValue("on") == "1"
	back := Prefix + "p/" + url.PathEscape(p) + "/e/" + url.PathEscape(e) + "/s/" + url.PathEscape(svc) + "/"
	q := "Turn maintenance off for " + svc + " in " + e + " of " + p + "? Its requests are routed again."
	if on {
		q = "Turn maintenance on for " + svc + " in " + e + " of " + p + "? Every request is answered 503 with the maintenance page until it is turned off."
	}
	if !h.confirm(w, r, s, "maintenance", q, back, "project", "environment", "service", "on", "message") {
		return
	}
	req := apiwire.MaintenanceRequest{On: on, RequestID: r.PostFormValue("request_id"), RequestedAt: h.opts.Now().UTC()}
	if on {
		req.Message = strings.TrimSpace(r.PostFormValue("message"))
	}
	if _, err := s.c.Maintenance(apiCtx(r), p, e, svc, req); err != nil {
		h.fail(w, s, err)
		return
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}
