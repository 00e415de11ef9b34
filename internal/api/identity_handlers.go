package api

import (
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
)

// tokenNameRe is a token's label: "ci", "laptop-ana".
var tokenNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// MaxTokenLifetime bounds --expires.
const MaxTokenLifetime = 366 * 24 * time.Hour

// ParseExpiresIn reads a token lifetime ("720h"); empty is never.
func ParseExpiresIn(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 || d > MaxTokenLifetime {
		return 0, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field %q must be a duration from 1s to %s, such as 720h, got %q", field, MaxTokenLifetime, trunc(s))
	}
	return d, nil
}

func checkRoles(field string, roles []string) error {
	if _, err := auth.ParseRoles(roles); err != nil {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field %q: %v", field, err)
	}
	return nil
}

func validateCreateUserRequest(r *apiwire.CreateUserRequest) error {
	if !nameRe.MatchString(r.Name) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"name\" must be a user name (lower-case letters, digits, dashes; such as ci-deployer), got %q", trunc(r.Name))
	}
	if len(r.Roles) == 0 {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"roles\" must hold at least one role, such as staging_deployer")
	}
	if err := checkRoles("roles", r.Roles); err != nil {
		return err
	}
	if r.TokenName != "" && !tokenNameRe.MatchString(r.TokenName) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"token_name\" must be letters, digits, dots, dashes or underscores, got %q", trunc(r.TokenName))
	}
	_, err := ParseExpiresIn("expires_in", r.ExpiresIn)
	return err
}

func validateUpdateUserRequest(r *apiwire.UpdateUserRequest) error {
	if len(r.AddRoles) == 0 && len(r.RemoveRoles) == 0 && r.Disabled == nil {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "nothing to change: give add_roles, remove_roles or disabled")
	}
	if err := checkRoles("add_roles", r.AddRoles); err != nil {
		return err
	}
	return checkRoles("remove_roles", r.RemoveRoles)
}

func validateCreateTokenRequest(r *apiwire.CreateTokenRequest) error {
	if r.User != "" && !nameRe.MatchString(r.User) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"user\" must be a user name, got %q", trunc(r.User))
	}
	if r.Name != "" && !tokenNameRe.MatchString(r.Name) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"name\" must be letters, digits, dots, dashes or underscores, got %q", trunc(r.Name))
	}
	_, err := ParseExpiresIn("expires_in", r.ExpiresIn)
	return err
}

func (h *Handler) whoami(w http.ResponseWriter, r *http.Request, _ string) {
	out, err := h.opts.Identity.Whoami(r.Context(), principalOf(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) listUsers(w http.ResponseWriter, r *http.Request, _ string) {
	list, err := h.opts.Identity.Users(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*apiwire.User{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) getUser(w http.ResponseWriter, r *http.Request, _ string) {
	name := r.PathValue("name")
	if !nameRe.MatchString(name) {
		h.fail(w, r, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "%q is not a user name", trunc(name)))
		return
	}
	u, err := h.opts.Identity.User(r.Context(), name)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (h *Handler) createUser(w http.ResponseWriter, r *http.Request, actor string) {
	var req apiwire.CreateUserRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateCreateUserRequest(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	rec, done := h.auditRecord(r)
	out, err := h.opts.Identity.CreateUser(r.Context(), req, actor, rec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	done()
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) updateUser(w http.ResponseWriter, r *http.Request, actor string) {
	name := r.PathValue("name")
	if !nameRe.MatchString(name) {
		h.fail(w, r, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "%q is not a user name", trunc(name)))
		return
	}
	var req apiwire.UpdateUserRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateUpdateUserRequest(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	rec, done := h.auditRecord(r)
	u, err := h.opts.Identity.UpdateUser(r.Context(), name, req, actor, rec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	done()
	writeJSON(w, http.StatusOK, u)
}

func (h *Handler) listTokens(w http.ResponseWriter, r *http.Request, _ string) {
	user := r.URL.Query().Get("user")
	if user != "" && user != "*" && !nameRe.MatchString(user) {
		h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter user %q is not a user name (or * for every user)", trunc(user)))
		return
	}
	list, err := h.opts.Identity.Tokens(r.Context(), principalOf(r), user)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*apiwire.Token{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) createToken(w http.ResponseWriter, r *http.Request, _ string) {
	var req apiwire.CreateTokenRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateCreateTokenRequest(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	rec, done := h.auditRecord(r)
	out, err := h.opts.Identity.CreateToken(r.Context(), principalOf(r), req, rec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	done()
	writeJSON(w, http.StatusCreated, out)
}

func (h *Handler) revokeToken(w http.ResponseWriter, r *http.Request, _ string) {
	var req apiwire.RevokeTokenRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	rec, done := h.auditRecord(r)
	out, err := h.opts.Identity.RevokeToken(r.Context(), principalOf(r), r.PathValue("id"), rec)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	done()
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) listAudit(w http.ResponseWriter, r *http.Request, _ string) {
	q := r.URL.Query()
	f := apiwire.AuditFilter{Actor: q.Get("actor"), Environment: q.Get("environment"), Limit: 1000}
	if s := q.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter since must be an RFC 3339 time, got %q", trunc(s)))
			return
		}
		f.Since = t
	}
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 10000 {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter limit must be a whole number from 1 to 10000, got %q", trunc(s)))
			return
		}
		f.Limit = n
	}
	for name, v := range map[string]string{"actor": f.Actor, "environment": f.Environment} {
		if v != "" && !nameRe.MatchString(v) {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter %s %q is not a valid name", name, trunc(v)))
			return
		}
	}
	list, err := h.opts.Identity.AuditLog(r.Context(), f)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if list == nil {
		list = []*apiwire.AuditEntry{}
	}
	writeJSON(w, http.StatusOK, list)
}

func (h *Handler) verifyAudit(w http.ResponseWriter, r *http.Request, _ string) {
	rep, err := h.opts.Identity.VerifyAudit(r.Context())
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
