package dashboard

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/client"
)

func asClientError(err error, ce **client.Error) bool { return errors.As(err, ce) }

type envLink struct {
	Name, Target string
	Protected    bool
	// Readable: the caller may see the environment's status.
	Readable bool
}

type projectView struct {
	Name, UpdatedBy string
	Version         int
	Environments    []envLink
}

func (h *Handler) projects(w http.ResponseWriter, r *http.Request, s *session) {
	list, err := s.c.Projects(apiCtx(r))
	if err != nil {
		h.fail(w, s, err)
		return
	}
	var out []projectView
	for _, p := range list {
		if len(p.Definition) == 0 {
			// Lists leave the definition out; the project itself has it.
			if full, err := s.c.Project(apiCtx(r), p.Name); err == nil {
				p = full
			}
		}
		pv := projectView{Name: p.Name, UpdatedBy: p.UpdatedBy, Version: p.Version}
		var def struct {
			Environments []struct {
				Name, Target string
				Protected    bool
			} `json:"environments"`
		}
		_ = json.Unmarshal(p.Definition, &def)
		for _, e := range def.Environments {
			pv.Environments = append(pv.Environments, envLink{Name: e.Name, Target: e.Target, Protected: e.Protected, Readable: s.can("events.read", p.Name, e.Name)})
		}
		out = append(out, pv)
	}
	h.renderFrame(w, http.StatusOK, "projects", &frame{Title: "projects", s: s, Page: out})
}

type envView struct {
	Project, Environment string
	O                    *apiwire.Overview
}

func (h *Handler) environment(w http.ResponseWriter, r *http.Request, s *session) {
	p, e := r.PathValue("project"), r.PathValue("env")
	o, err := s.c.Overview(apiCtx(r), p, e)
	if err != nil {
		h.fail(w, s, err)
		return
	}
	live := false
	for _, so := range o.Services {
		live = live || so.InProgress != ""
	}
	h.renderFrame(w, http.StatusOK, "environment", &frame{Title: p + " / " + e, s: s, Crumbs: crumbs(p, e, ""), Refresh: live,
		Page: envView{Project: p, Environment: e, O: o}})
}

func crumbs(p, e, svc string) []crumb {
	out := []crumb{{"projects", Prefix}}
	if e != "" {
		out = append(out, crumb{p + " / " + e, Prefix + "p/" + p + "/e/" + e + "/"})
	}
	if svc != "" {
		out = append(out, crumb{svc, Prefix + "p/" + p + "/e/" + e + "/s/" + svc + "/"})
	}
	return out
}

type serviceView struct {
	Project, Environment, Service     string
	St                                *apiwire.ServiceStatus
	Releases                          []*apiwire.Release
	CanRollback, CanHalt, CanMaintain bool
	Weights                           map[string]int
	// CurrentID is the serving release, which has no rollback button.
	CurrentID string
}

func (h *Handler) service(w http.ResponseWriter, r *http.Request, s *session) {
	p, e, svc := r.PathValue("project"), r.PathValue("env"), r.PathValue("service")
	st, err := s.c.Status(apiCtx(r), p, e, svc)
	if err != nil {
		h.fail(w, s, err)
		return
	}
	rels, err := s.c.Releases(apiCtx(r), apiwire.ReleaseFilter{Project: p, Environment: e, Service: svc, Limit: 50})
	if err != nil {
		h.fail(w, s, err)
		return
	}
	weights := map[string]int{}
	for _, rt := range st.Routes {
		weights[rt.Group] = rt.Weight
	}
	v := serviceView{Project: p, Environment: e, Service: svc, St: st, Releases: rels, Weights: weights,
		CanRollback: s.can("release.rollback", p, e), CanHalt: s.can("release.halt", p, e),
		CanMaintain: s.can("service.maintenance", p, e)}
	if st.Current != nil {
		v.CurrentID = st.Current.ID
	}
	h.renderFrame(w, http.StatusOK, "service", &frame{Title: svc + " in " + e, s: s, Crumbs: crumbs(p, e, svc), Refresh: st.InProgress != nil, Page: v})
}

type releaseView struct {
	R       *apiwire.ReleaseDetail
	CanHalt bool
}

func (h *Handler) release(w http.ResponseWriter, r *http.Request, s *session) {
	rel, err := s.c.Release(apiCtx(r), r.PathValue("id"))
	if err != nil {
		h.fail(w, s, err)
		return
	}
	v := releaseView{R: rel, CanHalt: !rel.Done && s.can("release.halt", rel.Project, rel.Environment)}
	h.renderFrame(w, http.StatusOK, "release", &frame{Title: "release " + shortID(rel.ID), s: s, Crumbs: crumbs(rel.Project, rel.Environment, rel.Service),
		Refresh: !rel.Done, Page: v})
}

type logsView struct {
	Project, Environment, Service string
	Release, Filter               string
	Follow                        bool
	Lines                         []apiwire.LogLine
	Live                          string
}

// logTail is how many lines a logs page shows before following.
const logTail = 200

func (h *Handler) logs(w http.ResponseWriter, r *http.Request, s *session) {
	p, e, svc := r.PathValue("project"), r.PathValue("env"), r.PathValue("service")
	q := r.URL.Query()
	v := logsView{Project: p, Environment: e, Service: svc, Release: q.Get("release"), Filter: q.Get("filter"), Follow: q.Get("follow") != ""}
	lq := apiwire.LogsQuery{Project: p, Environment: e, Service: svc, Release: v.Release, Filter: v.Filter, Tail: logTail}
	err := s.c.Logs(apiCtx(r), lq, func(l apiwire.LogLine) error { v.Lines = append(v.Lines, l); return nil })
	if err != nil {
		h.fail(w, s, err)
		return
	}
	if v.Follow {
		lv := url.Values{}
		if v.Release != "" {
			lv.Set("release", v.Release)
		}
		if v.Filter != "" {
			lv.Set("filter", v.Filter)
		}
		// The stream goes on after the last line shown.
		since := h.opts.Now()
		if n := len(v.Lines); n > 0 {
			since = v.Lines[n-1].Time.Add(time.Nanosecond)
		}
		lv.Set("since", since.UTC().Format(time.RFC3339Nano))
		v.Live = Prefix + "p/" + p + "/e/" + e + "/s/" + svc + "/logs/live?" + lv.Encode()
	}
	h.renderFrame(w, http.StatusOK, "logs", &frame{Title: "logs of " + svc, s: s, Crumbs: crumbs(p, e, svc), Refresh: v.Follow, Page: v})
}

type alarmsView struct {
	Project, Environment string
	Alarms               []apiwire.Alarm
	Deliveries           []apiwire.Notification
}

func (h *Handler) alarms(w http.ResponseWriter, r *http.Request, s *session) {
	p, e := r.PathValue("project"), r.PathValue("env")
	f := apiwire.AlarmFilter{Project: p, Environment: e}
	al, err := s.c.Alarms(apiCtx(r), f)
	if err != nil {
		h.fail(w, s, err)
		return
	}
	ns, err := s.c.Notifications(apiCtx(r), f)
	if err != nil {
		h.fail(w, s, err)
		return
	}
	h.renderFrame(w, http.StatusOK, "alarms", &frame{Title: "alarms of " + e, s: s, Crumbs: crumbs(p, e, ""), Page: alarmsView{p, e, al, ns}})
}

type secretsView struct {
	Project, Environment string
	Secrets              []apiwire.SecretInfo
}

func (h *Handler) secrets(w http.ResponseWriter, r *http.Request, s *session) {
	p, e := r.PathValue("project"), r.PathValue("env")
	list, err := s.c.Secrets(apiCtx(r), p, e, "")
	if err != nil {
		h.fail(w, s, err)
		return
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].Service != list[j].Service {
			return list[i].Service < list[j].Service
		}
		return list[i].Key < list[j].Key
	})
	h.renderFrame(w, http.StatusOK, "secrets", &frame{Title: "secrets of " + e, s: s, Crumbs: crumbs(p, e, ""), Page: secretsView{p, e, list}})
}

func (h *Handler) audit(w http.ResponseWriter, r *http.Request, s *session) {
	limit := 200
	if n, err := strconv.Atoi(r.URL.Query().Get("limit")); err == nil && n > 0 && n <= 1000 {
		limit = n
	}
	list, err := s.c.Audit(apiCtx(r), apiwire.AuditFilter{Limit: limit, Actor: r.URL.Query().Get("actor")})
	if err != nil {
		h.fail(w, s, err)
		return
	}
	h.renderFrame(w, http.StatusOK, "audit", &frame{Title: "audit log", s: s, Page: list})
}
