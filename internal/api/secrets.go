package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/secrets"
)

// Secrets is what the API needs to keep secrets. Errors never carry a value;
// values cross it only in PutSecrets and SecretValue.
type Secrets interface {
	PutSecrets(ctx context.Context, project, env string, req apiwire.SecretPutRequest, actor string) ([]apiwire.SecretVersion, error)
	ListSecrets(ctx context.Context, project, env, service string) ([]apiwire.SecretInfo, error)
	SecretValue(ctx context.Context, project, env, service, key string, version int) (*apiwire.SecretValue, error)
	SecretHistory(ctx context.Context, project, env, service, key string) ([]apiwire.SecretVersion, error)
	RollbackSecret(ctx context.Context, project, env, key string, req apiwire.SecretRollbackRequest, actor string) (*apiwire.SecretVersion, error)
	DeleteSecret(ctx context.Context, project, env, key string, req apiwire.SecretDeleteRequest, actor string) (*apiwire.SecretDeleted, error)
	RotateMasterKey(ctx context.Context, actor string) (*apiwire.MasterKeyRotated, error)
}

// MaxSecretsPerPut bounds the keys of one put.
const MaxSecretsPerPut = 100

func (h *Handler) secretsOrFail(w http.ResponseWriter, r *http.Request) Secrets {
	if h.opts.Secrets == nil {
		h.fail(w, r, apiwire.Problemf(http.StatusNotImplemented, "NoSecretStore", "this server keeps no secrets"))
	}
	return h.opts.Secrets
}

func checkSecretKey(field, key string) error {
	if !secrets.KeyRe.MatchString(key) {
		return apiwire.Problemf(http.StatusBadRequest, "BadRequest", "%s %q is not a secret key: use upper-case letters, digits and underscores, starting with a letter (such as DATABASE_URL)", field, trunc(key))
	}
	return nil
}

// secretScope checks the path's project, environment and key (when the
// route has one) and the service (empty: environment-wide).
func secretScope(r *http.Request, service string, withKey bool) error {
	if err := checkProject(r.PathValue("project")); err != nil {
		return err
	}
	if !nameRe.MatchString(r.PathValue("env")) {
		return apiwire.Problemf(http.StatusBadRequest, "BadRequest", "environment %q is not an environment name (lower-case letters, digits, dashes)", trunc(r.PathValue("env")))
	}
	if service != "" && !nameRe.MatchString(service) {
		return apiwire.Problemf(http.StatusBadRequest, "BadRequest", "service %q is not a service name (lower-case letters, digits, dashes); leave it out for an environment-wide secret", trunc(service))
	}
	if withKey {
		return checkSecretKey("key", r.PathValue("key"))
	}
	return nil
}

func validateSecretPut(req *apiwire.SecretPutRequest) error {
	if len(req.Values) == 0 || len(req.Values) > MaxSecretsPerPut {
		return apiwire.Problemf(http.StatusBadRequest, "BadRequest", "field \"values\" must hold 1 to %d secrets, KEY: value", MaxSecretsPerPut)
	}
	for k, v := range req.Values {
		if err := checkSecretKey("field \"values\": key", k); err != nil {
			return err
		}
		if err := secrets.CheckValue(secrets.Ref{Key: k}, []byte(v)); err != nil {
			return apiwire.Problemf(http.StatusBadRequest, "BadRequest", "field \"values\": %v", err)
		}
	}
	return nil
}

func (h *Handler) putSecrets(w http.ResponseWriter, r *http.Request, actor string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	var req apiwire.SecretPutRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := secretScope(r, req.Service, false); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := validateSecretPut(&req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	out, err := s.PutSecrets(r.Context(), r.PathValue("project"), r.PathValue("env"), req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) listSecrets(w http.ResponseWriter, r *http.Request, _ string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	svc := r.URL.Query().Get("service")
	if err := secretScope(r, svc, false); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := s.ListSecrets(r.Context(), r.PathValue("project"), r.PathValue("env"), svc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) getSecret(w http.ResponseWriter, r *http.Request, _ string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	q := r.URL.Query()
	if err := secretScope(r, q.Get("service"), true); err != nil {
		h.fail(w, r, err)
		return
	}
	version := 0
	if v := q.Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, "BadRequest", "query parameter version must be a version number (1 or more), got %q", trunc(v)))
			return
		}
		version = n
	}
	out, err := s.SecretValue(r.Context(), r.PathValue("project"), r.PathValue("env"), q.Get("service"), r.PathValue("key"), version)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) secretHistory(w http.ResponseWriter, r *http.Request, _ string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	svc := r.URL.Query().Get("service")
	if err := secretScope(r, svc, true); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := s.SecretHistory(r.Context(), r.PathValue("project"), r.PathValue("env"), svc, r.PathValue("key"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) rollbackSecret(w http.ResponseWriter, r *http.Request, actor string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	var req apiwire.SecretRollbackRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := secretScope(r, req.Service, true); err != nil {
		h.fail(w, r, err)
		return
	}
	if req.To < 1 {
		h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, "BadRequest", "field \"to\" must be the version to go back to (1 or more); see runway secret history"))
		return
	}
	if !h.admit(w, r) {
		return
	}
	out, err := s.RollbackSecret(r.Context(), r.PathValue("project"), r.PathValue("env"), r.PathValue("key"), req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) deleteSecret(w http.ResponseWriter, r *http.Request, actor string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	var req apiwire.SecretDeleteRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := secretScope(r, req.Service, true); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	out, err := s.DeleteSecret(r.Context(), r.PathValue("project"), r.PathValue("env"), r.PathValue("key"), req, actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) rotateMasterKey(w http.ResponseWriter, r *http.Request, actor string) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	var req apiwire.RotateMasterKeyRequest
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	out, err := s.RotateMasterKey(r.Context(), actor)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}
