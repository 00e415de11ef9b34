package secrets

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Row is one stored version of a secret: its meta and its sealed value.
type Row struct {
	Meta
	Sealed
}

// Rows is the storage of sealed versions (the SQLite store implements it).
// Errors are ErrNotFound and ErrExists of this package where they apply.
type Rows interface {
	// InsertSecretVersions stores, in one transaction, a new version of
	// each ref: make is called inside it with the version the ref gets (its
	// last plus one) and returns the row to store. Without overwrite a ref
	// that has a version fails with an error wrapping ErrExists, naming it.
	InsertSecretVersions(ctx context.Context, refs []Ref, overwrite bool, make func(ref Ref, version int) (*Row, error)) ([]*Row, error)
	// SecretVersion returns a version of ref (0: its current one).
	SecretVersion(ctx context.Context, ref Ref, version int) (*Row, error)
	// SecretHistory returns the versions of ref, newest first.
	SecretHistory(ctx context.Context, ref Ref) ([]Meta, error)
	// ListSecrets: see Store.List.
	ListSecrets(ctx context.Context, project, environment, service string) ([]Info, error)
	// TouchSecret records an access of ref.
	TouchSecret(ctx context.Context, ref Ref, at time.Time) error
	// DeleteSecret removes ref and its versions; ErrNotFound when none.
	DeleteSecret(ctx context.Context, ref Ref) error
	// RewrapSecrets calls fn on every stored version and stores what it
	// returns (the sealed part), all in one transaction: fn failing once
	// changes nothing.
	RewrapSecrets(ctx context.Context, fn func(r *Row) (Sealed, error)) (int, error)
	// SecretKeyIDs lists the master key ids the stored versions name.
	SecretKeyIDs(ctx context.Context) ([]string, error)
}

// Vault is the Store over sealed rows, with envelope encryption.
type Vault struct {
	rows Rows
	now  func() time.Time
	// mu: a rotation excludes every seal and open.
	mu sync.RWMutex
	kr *Keyring
}

var _ Store = (*Vault)(nil)

// OpenVault checks that kr opens what rows hold (every key id the rows
// name is in kr) and returns the vault.
func OpenVault(ctx context.Context, rows Rows, kr *Keyring, now func() time.Time) (*Vault, error) {
	ids, err := rows.SecretKeyIDs(ctx)
	if err != nil {
		return nil, err
	}
	if err := kr.check(ids); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Vault{rows: rows, kr: kr, now: now}, nil
}

// KeyID is the current master key's id.
func (v *Vault) KeyID() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.kr.Current().ID
}

// Put implements Store.
func (v *Vault) Put(ctx context.Context, values map[Ref][]byte, by string, overwrite bool) ([]Meta, error) {
	refs := make([]Ref, 0, len(values))
	for r, val := range values {
		if err := CheckValue(r, val); err != nil {
			return nil, err
		}
		refs = append(refs, r)
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].String() < refs[j].String() })
	return v.put(ctx, refs, overwrite, func(r Ref) ([]byte, int) { return values[r], 0 }, by)
}

func (v *Vault) put(ctx context.Context, refs []Ref, overwrite bool, value func(Ref) ([]byte, int), by string) ([]Meta, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	mk := v.kr.Current()
	now := v.now().UTC()
	rows, err := v.rows.InsertSecretVersions(ctx, refs, overwrite, func(ref Ref, version int) (*Row, error) {
		val, from := value(ref)
		s, err := Seal(mk, ref, version, val)
		if err != nil {
			return nil, err
		}
		return &Row{Meta: Meta{Ref: ref, Version: version, CreatedAt: now, CreatedBy: by, RollbackOf: from}, Sealed: s}, nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]Meta, 0, len(rows))
	for _, r := range rows {
		out = append(out, r.Meta)
	}
	return out, nil
}

// Value implements Store.
func (v *Vault) Value(ctx context.Context, ref Ref, version int) ([]byte, Meta, error) {
	val, m, err := v.open(ctx, ref, version)
	if err != nil {
		return nil, Meta{}, err
	}
	if err := v.rows.TouchSecret(ctx, ref, v.now()); err != nil {
		clear(val)
		return nil, Meta{}, err
	}
	return val, m, nil
}

func (v *Vault) open(ctx context.Context, ref Ref, version int) ([]byte, Meta, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	r, err := v.rows.SecretVersion(ctx, ref, version)
	if err != nil {
		return nil, Meta{}, err
	}
	val, err := Open(v.kr, r.Ref, r.Version, r.Sealed)
	if err != nil {
		return nil, Meta{}, err
	}
	return val, r.Meta, nil
}

// History implements Store.
func (v *Vault) History(ctx context.Context, ref Ref) ([]Meta, error) {
	return v.rows.SecretHistory(ctx, ref)
}

// List implements Store.
func (v *Vault) List(ctx context.Context, project, environment, service string) ([]Info, error) {
	return v.rows.ListSecrets(ctx, project, environment, service)
}

// Rollback implements Store.
func (v *Vault) Rollback(ctx context.Context, ref Ref, to int, by string) (Meta, error) {
	if to < 1 {
		return Meta{}, fmt.Errorf("secret %s: --to must be a version (1 or more), got %d", ref.Key, to)
	}
	val, _, err := v.open(ctx, ref, to)
	if err != nil {
		return Meta{}, err
	}
	defer clear(val)
	ms, err := v.put(ctx, []Ref{ref}, true, func(Ref) ([]byte, int) { return val, to }, by)
	if err != nil {
		return Meta{}, err
	}
	return ms[0], nil
}

// Delete implements Store.
func (v *Vault) Delete(ctx context.Context, ref Ref) error { return v.rows.DeleteSecret(ctx, ref) }

// Values opens the pinned versions a release's processes receive, by
// variable name, recording the access.
func (v *Vault) Values(ctx context.Context, project, environment string, pins []Pin) (map[string]string, error) {
	out := make(map[string]string, len(pins))
	for _, p := range pins {
		val, _, err := v.Value(ctx, p.Ref(project, environment), p.Version)
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("secret %s version %d (%s) pinned by the release no longer exists (deleted); put it again and deploy: %w", p.Key, p.Version, p.Ref(project, environment).Scope(), err)
		}
		if err != nil {
			return nil, err
		}
		out[p.Name] = string(val)
		clear(val)
	}
	return out, nil
}

// RotateMaster re-wraps every data key under a new master key, in one
// transaction, and makes the new key the key file's. A key that comes from
// RUNWAY_MASTER_KEY is not rotated here (the server cannot change its
// environment). It returns the old and new key ids and how many versions
// were re-wrapped.
func (v *Vault) RotateMaster(ctx context.Context) (oldID, newID string, n int, err error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.kr.FromEnvironment() {
		return "", "", 0, fmt.Errorf("the master key comes from %s, which the server cannot change: %w", MasterKeyEnv, ErrKeyFromEnvironment)
	}
	next, err := NewMasterKey()
	if err != nil {
		return "", "", 0, err
	}
	if err := v.kr.stageNext(next); err != nil {
		return "", "", 0, err
	}
	n, err = v.rows.RewrapSecrets(ctx, func(r *Row) (Sealed, error) {
		return Rewrap(v.kr, next, r.Ref, r.Version, r.Sealed)
	})
	if err != nil {
		v.kr.unstage()
		return "", "", 0, fmt.Errorf("re-wrap the data keys (nothing was changed): %w", err)
	}
	oldID = v.kr.Current().ID
	if err := v.kr.promote(next); err != nil {
		// The rows use the new key, staged beside the old: the next start
		// finishes the rotation (LoadKeyring).
		v.kr.keys[next.ID] = next
		v.kr.current = next
		return "", "", 0, err
	}
	return oldID, next.ID, n, nil
}

// ErrKeyFromEnvironment: rotation refused because the master key comes
// from RUNWAY_MASTER_KEY.
var ErrKeyFromEnvironment = errors.New("master key set by the environment")
