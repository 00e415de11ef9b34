package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/driver/ecs"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
)

// secretService implements api.Secrets over the vault; the backend
// resolves and pins versions at submit (pinSecrets) and the local driver
// receives the pinned values (releaseSecrets).
type secretService struct {
	b     *backend
	vault *secrets.Vault
}

var _ api.Secrets = (*secretService)(nil)

// secretProblem turns the vault's errors into problems; none carries a value.
func secretProblem(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, secrets.ErrNotFound):
		return apiwire.Problemf(http.StatusNotFound, apiwire.KindSecretNotFound, "%s; see runway secret list", strings.TrimSuffix(err.Error(), ": "+secrets.ErrNotFound.Error()))
	case errors.Is(err, secrets.ErrExists):
		return apiwire.Problemf(http.StatusConflict, apiwire.KindSecretExists, "%s", strings.TrimSuffix(err.Error(), ": "+secrets.ErrExists.Error()))
	case errors.Is(err, secrets.ErrKeyFromEnvironment):
		return apiwire.Problemf(http.StatusConflict, apiwire.KindMasterKeyFromEnvironment, "%v: restart the server with a new %s after re-sealing, or keep the key in DATA_DIR/%s (unset %s) to rotate it here", err, secrets.MasterKeyEnv, secrets.MasterKeyFile, secrets.MasterKeyEnv)
	case errors.Is(err, secrets.ErrTampered), errors.Is(err, secrets.ErrMasterKey):
		return apiwire.Problemf(http.StatusInternalServerError, apiwire.KindSecretUnreadable, "%v; restore the database or the master key from a backup", err)
	}
	return err
}

// checkEnvironment refuses secrets of a project or environment the server
// does not hold; it returns the environment's target.
func (s *secretService) checkEnvironment(ctx context.Context, project, env string) (string, error) {
	_, def, err := s.b.loadProject(ctx, project)
	if err != nil {
		return "", err
	}
	e := def.Environment(env)
	if e == nil {
		return "", apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownEnvironment, "project %s has no environment %q; it has %s", project, env, strings.Join(def.EnvironmentNames(), ", "))
	}
	return e.Target, nil
}

func versionToAPI(m secrets.Meta) apiwire.SecretVersion {
	return apiwire.SecretVersion{Key: m.Key, Service: m.Service, Version: m.Version, CreatedAt: m.CreatedAt, CreatedBy: m.CreatedBy, RollbackOf: m.RollbackOf}
}

func (s *secretService) PutSecrets(ctx context.Context, project, env string, req apiwire.SecretPutRequest, actor string) ([]apiwire.SecretVersion, error) {
	tgt, err := s.checkEnvironment(ctx, project, env)
	if err != nil {
		return nil, err
	}
	values := make(map[secrets.Ref][]byte, len(req.Values))
	for k, v := range req.Values {
		values[secrets.Ref{Project: project, Environment: env, Service: req.Service, Key: k}] = []byte(v)
	}
	ms, err := s.vault.Put(ctx, values, actor, req.Overwrite)
	if err != nil {
		return nil, secretProblem(err)
	}
	if err := s.writeExternal(ctx, tgt, ms, func(m secrets.Meta) []byte { return values[m.Ref] }); err != nil {
		return nil, err
	}
	out := make([]apiwire.SecretVersion, 0, len(ms))
	for _, m := range ms {
		out = append(out, versionToAPI(m))
	}
	return out, nil
}

func (s *secretService) ListSecrets(ctx context.Context, project, env, service string) ([]apiwire.SecretInfo, error) {
	list, err := s.vault.List(ctx, project, env, service)
	if err != nil {
		return nil, err
	}
	out := make([]apiwire.SecretInfo, 0, len(list))
	for _, in := range list {
		si := apiwire.SecretInfo{Key: in.Key, Service: in.Service, Version: in.Version, CreatedAt: in.CreatedAt, ChangedAt: in.ChangedAt}
		if !in.AccessedAt.IsZero() {
			at := in.AccessedAt
			si.AccessedAt = &at
		}
		out = append(out, si)
	}
	return out, nil
}

func (s *secretService) SecretValue(ctx context.Context, project, env, service, key string, version int) (*apiwire.SecretValue, error) {
	v, m, err := s.vault.Value(ctx, secrets.Ref{Project: project, Environment: env, Service: service, Key: key}, version)
	if err != nil {
		return nil, secretProblem(err)
	}
	return &apiwire.SecretValue{SecretVersion: versionToAPI(m), Value: string(v)}, nil
}

func (s *secretService) SecretHistory(ctx context.Context, project, env, service, key string) ([]apiwire.SecretVersion, error) {
	ms, err := s.vault.History(ctx, secrets.Ref{Project: project, Environment: env, Service: service, Key: key})
	if err != nil {
		return nil, secretProblem(err)
	}
	out := make([]apiwire.SecretVersion, 0, len(ms))
	for _, m := range ms {
		out = append(out, versionToAPI(m))
	}
	return out, nil
}

func (s *secretService) RollbackSecret(ctx context.Context, project, env, key string, req apiwire.SecretRollbackRequest, actor string) (*apiwire.SecretVersion, error) {
	tgt, err := s.checkEnvironment(ctx, project, env)
	if err != nil {
		return nil, err
	}
	m, err := s.vault.Rollback(ctx, secrets.Ref{Project: project, Environment: env, Service: req.Service, Key: key}, req.To, actor)
	if err != nil {
		return nil, secretProblem(err)
	}
	if err := s.writeExternal(ctx, tgt, []secrets.Meta{m}, func(m secrets.Meta) []byte {
		v, _, err := s.vault.Value(ctx, m.Ref, m.Version)
		if err != nil {
			return nil
		}
		return v
	}); err != nil {
		return nil, err
	}
	out := versionToAPI(m)
	return &out, nil
}

func (s *secretService) DeleteSecret(ctx context.Context, project, env, key string, req apiwire.SecretDeleteRequest, actor string) (*apiwire.SecretDeleted, error) {
	ref := secrets.Ref{Project: project, Environment: env, Service: req.Service, Key: key}
	if _, err := s.vault.History(ctx, ref); err != nil {
		return nil, secretProblem(err)
	}
	pinned, err := s.pinnedBy(ctx, ref)
	if err != nil {
		return nil, err
	}
	if len(pinned) > 0 && !req.Force {
		return nil, apiwire.Problemf(http.StatusConflict, apiwire.KindSecretInUse,
			"secret %s (%s) is pinned by running release(s) %s: their instances would not restart without it. Deploy releases that no longer name it first, or pass --force",
			key, ref.Scope(), strings.Join(pinned, ", "))
	}
	if err := s.vault.Delete(ctx, ref); err != nil {
		return nil, secretProblem(err)
	}
	return &apiwire.SecretDeleted{Key: key, Service: req.Service, PinnedBy: pinned}, nil
}

// writeExternal writes versions the vault just made into the store of the
// environment's target that delivers secrets itself: Secrets Manager for
// target aws (the driver's PutSecret). The vault has the versions already;
// a failed write is reported, naming the version, and is repaired by the
// next deploy that pins it (the driver writes pinned versions again).
func (s *secretService) writeExternal(ctx context.Context, tgt string, ms []secrets.Meta, value func(secrets.Meta) []byte) error {
	if tgt != "aws" {
		return nil
	}
	drv, _ := s.b.drivers["aws"].(*ecs.Driver)
	if drv == nil {
		return nil // no aws outputs: nothing to deliver to; releases are refused (NoDriver)
	}
	for _, m := range ms {
		if !drv.HasEnvironment(m.Environment) {
			// Not applied yet (or the server reads older outputs): the
			// first deploy after writes the versions it pins.
			s.b.log.Warn("secret of an aws environment the server has no Terraform outputs of: not written into Secrets Manager now; the first release that pins it writes it",
				"environment", m.Environment, "service", m.Service, "key", m.Key, "version", m.Version)
			continue
		}
		v := value(m)
		if v == nil {
			return fmt.Errorf("secret %s v%d: cannot open it to write it into Secrets Manager", m.Key, m.Version)
		}
		var shadowed map[string]bool
		if m.Service == "" {
			list, err := s.vault.List(ctx, m.Project, m.Environment, "")
			if err != nil {
				return err
			}
			shadowed = map[string]bool{}
			for _, in := range list {
				if in.Key == m.Key && in.Service != "" {
					shadowed[in.Service] = true
				}
			}
		}
		n, err := drv.PutSecret(ctx, m.Environment, ecs.Secret{Key: m.Key, Service: m.Service, Version: m.Version,
			VersionID: secrets.ExternalVersionID(m.Ref, m.Version, m.CreatedAt), Value: v}, shadowed)
		if err != nil {
			return apiwire.Problemf(http.StatusBadGateway, apiwire.KindSecretUnreadable,
				"secret %s is stored in Runway as v%d, but writing it into AWS Secrets Manager failed: %v. The next deploy that pins it writes it again; check the server's AWS credentials", m.Key, m.Version, err)
		}
		if n == 0 {
			s.b.log.Warn("secret has no Secrets Manager container in the aws outputs: no task of the environment receives it until runway infra apply creates one (name it in the service's manifest) and the server reads new outputs",
				"environment", m.Environment, "service", m.Service, "key", m.Key, "version", m.Version)
		}
	}
	return nil
}

// awsSecrets are the versions a release pins, as target aws delivers them
// (ecs.Options.Secrets).
func (b *backend) awsSecrets(ctx context.Context, release string) ([]ecs.Secret, error) {
	r, pins, err := b.releasePins(ctx, release)
	if err != nil || len(pins) == 0 {
		return nil, err
	}
	out := make([]ecs.Secret, 0, len(pins))
	for _, p := range pins {
		ref := p.Ref(r.Project, r.Environment)
		v, m, err := b.secrets.Value(ctx, ref, p.Version)
		if err != nil {
			return nil, fmt.Errorf("secret %s %s: %w", p.Key, p.Label(), err)
		}
		out = append(out, ecs.Secret{Name: p.Name, Key: p.Key, Service: p.Service, Version: p.Version,
			VersionID: secrets.ExternalVersionID(ref, m.Version, m.CreatedAt), Value: v})
	}
	return out, nil
}

// pinnedBy lists the running releases of the environment (unfinished, or
// the newest Success of their service) that pin a version of ref.
func (s *secretService) pinnedBy(ctx context.Context, ref secrets.Ref) ([]string, error) {
	list, err := s.b.st.ListReleases(ctx, store.ReleaseFilter{Project: ref.Project, Environment: ref.Environment, Limit: 1000})
	if err != nil {
		return nil, err
	}
	current := map[string]bool{}
	var out []string
	for _, r := range list { // newest first
		running := !r.Done
		if r.State == string(engine.StateSuccess) && !current[r.Service] {
			current[r.Service], running = true, true
		}
		if !running {
			continue
		}
		spec, err := engine.DecodeSpec(r.Spec)
		if err != nil {
			continue
		}
		for _, p := range spec.Secrets {
			if p.Key == ref.Key && p.Service == ref.Service {
				out = append(out, fmt.Sprintf("%s (%s v%d)", r.ID, r.Service, p.Version))
				break
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s *secretService) RotateMasterKey(ctx context.Context, actor string) (*apiwire.MasterKeyRotated, error) {
	oldID, newID, n, err := s.vault.RotateMaster(ctx)
	if err != nil {
		return nil, secretProblem(err)
	}
	s.b.log.Info("master key rotated", "by", actor, "old_key_id", oldID, "new_key_id", newID, "versions", n)
	return &apiwire.MasterKeyRotated{OldKeyID: oldID, NewKeyID: newID, Versions: n}, nil
}

// pinSecrets resolves the secrets a release names to their current
// versions; a key with no value anywhere refuses the release, listing all.
func (b *backend) pinSecrets(ctx context.Context, project, env, service string, vars map[string]string) ([]secrets.Pin, error) {
	if len(vars) == 0 {
		return nil, nil
	}
	if b.secrets == nil {
		return nil, apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindMissingSecrets, "this server keeps no secrets")
	}
	list, err := b.secrets.List(ctx, project, env, service)
	if err != nil {
		return nil, err
	}
	pins, missing := secrets.Resolve(service, vars, list)
	if len(missing) > 0 {
		return nil, apiwire.Problemf(http.StatusUnprocessableEntity, apiwire.KindMissingSecrets,
			"service %s in %s names secret(s) with no value: %s. Put them first: runway secret put %s --env %s KEY=VALUE (or --env %s alone for an environment-wide secret)",
			service, env, strings.Join(missing, ", "), service, env, env)
	}
	return pins, nil
}

// checkPins refuses a rollback to a release whose pinned versions are gone.
func (b *backend) checkPins(ctx context.Context, project, env string, pins []secrets.Pin) error {
	if len(pins) == 0 {
		return nil
	}
	if b.secrets == nil {
		return errors.New("this server keeps no secrets")
	}
	var gone []string
	for _, p := range pins {
		if !b.secretVersionExists(ctx, p.Ref(project, env), p.Version) {
			gone = append(gone, fmt.Sprintf("%s v%d", p.Key, p.Version))
		}
	}
	if len(gone) > 0 {
		return apiwire.Problemf(http.StatusConflict, apiwire.KindMissingSecrets, "the release pins secret versions that were deleted: %s; deploy instead (it pins the current versions)", strings.Join(gone, ", "))
	}
	return nil
}

// secretVersionExists checks a version without opening (or touching) it.
func (b *backend) secretVersionExists(ctx context.Context, ref secrets.Ref, version int) bool {
	ms, err := b.secrets.History(ctx, ref)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m.Version == version {
			return true
		}
	}
	return false
}

// releaseSecrets opens the values a release's processes receive (the local
// driver's source of values), by variable name.
func (b *backend) releaseSecrets(ctx context.Context, release string) (map[string]string, error) {
	r, pins, err := b.releasePins(ctx, release)
	if err != nil || len(pins) == 0 {
		return nil, err
	}
	return b.secrets.Values(ctx, r.Project, r.Environment, pins)
}

// releasePins is a release and the secret versions it pins; with pins, an
// error unless this server keeps secrets.
func (b *backend) releasePins(ctx context.Context, release string) (*store.Release, []secrets.Pin, error) {
	r, err := b.st.GetRelease(ctx, release)
	if err != nil {
		return nil, nil, err
	}
	spec, err := engine.DecodeSpec(r.Spec)
	if err != nil {
		return nil, nil, err
	}
	if len(spec.Secrets) > 0 && b.secrets == nil {
		return nil, nil, errors.New("this server keeps no secrets")
	}
	return r, spec.Secrets, nil
}

func pinsToAPI(pins []secrets.Pin) []apiwire.SecretPin {
	var out []apiwire.SecretPin
	for _, p := range pins {
		out = append(out, apiwire.SecretPin{Name: p.Name, Key: p.Key, Service: p.Service, Version: p.Version})
	}
	return out
}
