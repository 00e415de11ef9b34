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
		h.fail(w, r, apiwire.Problemf(http.StatusNotImplemented, apiwire.KindNoSecretStore, "this server keeps no secrets"))
	}
	return h.opts.Secrets
}

func checkSecretKey(field, key string) error {
	if !secrets.KeyRe.MatchString(key) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "%s %q is not a secret key: use upper-case letters, digits and underscores, starting with a letter (such as DATABASE_URL)", field, trunc(key))
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
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "environment %q is not an environment name (lower-case letters, digits, dashes)", trunc(r.PathValue("env")))
	}
	if service != "" && !nameRe.MatchString(service) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "service %q is not a service name (lower-case letters, digits, dashes); leave it out for an environment-wide secret", trunc(service))
	}
	if withKey {
		return checkSecretKey("key", r.PathValue("key"))
	}
	return nil
}

func validateSecretPut(req *apiwire.SecretPutRequest) error {
	if len(req.Values) == 0 || len(req.Values) > MaxSecretsPerPut {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"values\" must hold 1 to %d secrets, KEY: value", MaxSecretsPerPut)
	}
	for k, v := range req.Values {
		if err := checkSecretKey("field \"values\": key", k); err != nil {
			return err
		}
		if err := secrets.CheckValue(secrets.Ref{Key: k}, []byte(v)); err != nil {
			return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"values\": %v", err)
		}
	}
	return nil
}

// secretChange is the path of every mutating secret route: decode the
// body, check the path (and the body's service) and the body, admit the
// request, act, answer 200.
func secretChange[Req, Out any](h *Handler, w http.ResponseWriter, r *http.Request, withKey bool,
	check func(*Req) (service string, err error), act func(Secrets, *Req) (Out, error)) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	var req Req
	if err := decodeBody(r, &req); err != nil {
		h.fail(w, r, err)
		return
	}
	service, err := check(&req)
	if err == nil {
		err = secretScope(r, service, withKey)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !h.admit(w, r) {
		return
	}
	out, err := act(s, &req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) putSecrets(w http.ResponseWriter, r *http.Request, actor string) {
	secretChange(h, w, r, false, func(req *apiwire.SecretPutRequest) (string, error) { return req.Service, validateSecretPut(req) },
		func(s Secrets, req *apiwire.SecretPutRequest) ([]apiwire.SecretVersion, error) {
			return s.PutSecrets(r.Context(), r.PathValue("project"), r.PathValue("env"), *req, actor)
		})
}

func (h *Handler) rollbackSecret(w http.ResponseWriter, r *http.Request, actor string) {
	secretChange(h, w, r, true, func(req *apiwire.SecretRollbackRequest) (string, error) {
		if req.To < 1 {
			return "", apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"to\" must be the version to go back to (1 or more); see runway secret history")
		}
		return req.Service, nil
	}, func(s Secrets, req *apiwire.SecretRollbackRequest) (*apiwire.SecretVersion, error) {
		return s.RollbackSecret(r.Context(), r.PathValue("project"), r.PathValue("env"), r.PathValue("key"), *req, actor)
	})
}

func (h *Handler) deleteSecret(w http.ResponseWriter, r *http.Request, actor string) {
	secretChange(h, w, r, true, func(req *apiwire.SecretDeleteRequest) (string, error) { return req.Service, nil },
		func(s Secrets, req *apiwire.SecretDeleteRequest) (*apiwire.SecretDeleted, error) {
			return s.DeleteSecret(r.Context(), r.PathValue("project"), r.PathValue("env"), r.PathValue("key"), *req, actor)
		})
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

// secretRead is the path of the secret reads: check the path and the
// query's service, read, answer 200.
func secretRead[Out any](h *Handler, w http.ResponseWriter, r *http.Request, withKey bool, read func(Secrets, string) (Out, error)) {
	s := h.secretsOrFail(w, r)
	if s == nil {
		return
	}
	svc := r.URL.Query().Get("service")
	if err := secretScope(r, svc, withKey); err != nil {
		h.fail(w, r, err)
		return
	}
	out, err := read(s, svc)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (h *Handler) listSecrets(w http.ResponseWriter, r *http.Request, _ string) {
	secretRead(h, w, r, false, func(s Secrets, svc string) ([]apiwire.SecretInfo, error) {
		return s.ListSecrets(r.Context(), r.PathValue("project"), r.PathValue("env"), svc)
	})
}

func (h *Handler) secretHistory(w http.ResponseWriter, r *http.Request, _ string) {
	secretRead(h, w, r, true, func(s Secrets, svc string) ([]apiwire.SecretVersion, error) {
		return s.SecretHistory(r.Context(), r.PathValue("project"), r.PathValue("env"), svc, r.PathValue("key"))
	})
}

func (h *Handler) getSecret(w http.ResponseWriter, r *http.Request, _ string) {
	version := 0
	if v := r.URL.Query().Get("version"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			h.fail(w, r, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "query parameter version must be a version number (1 or more), got %q", trunc(v)))
			return
		}
		version = n
	}
	w.Header().Set("Cache-Control", "no-store")
	secretRead(h, w, r, true, func(s Secrets, svc string) (*apiwire.SecretValue, error) {
		return s.SecretValue(r.Context(), r.PathValue("project"), r.PathValue("env"), svc, r.PathValue("key"), version)
	})
}
