package secrets

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"time"
)

// Errors callers decide on.
var (
	// ErrNotFound: no such secret, or no such version of it.
	ErrNotFound = errors.New("secret not found")
	// ErrExists: a put without overwrite of a key that has a value.
	ErrExists = errors.New("secret already exists")
	// ErrMasterKey: the master key cannot open what is stored (missing,
	// wrong, or another key than the rows were sealed with).
	ErrMasterKey = errors.New("master key does not open the stored secrets")
	// ErrTampered: a sealed value or data key failed authentication: the row
	// was altered or moved.
	ErrTampered = errors.New("secret failed authentication (altered or moved)")
)

// MaxValue bounds a secret's value (a certificate bundle fits).
const MaxValue = 64 << 10

// KeyRe is a secret's key, as written in manifests: DATABASE_URL.
var KeyRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]{0,127}$`)

// Ref names a secret. Service "" is an environment-wide secret, shared by
// every service of the environment that names it.
type Ref struct {
	Project     string `json:"project"`
	Environment string `json:"environment"`
	Service     string `json:"service,omitempty"`
	Key         string `json:"key"`
}

// String is "hello/staging/web/DATABASE_URL" (service "*" when environment-wide).
func (r Ref) String() string {
	svc := r.Service
	if svc == "" {
		svc = "*"
	}
	return r.Project + "/" + r.Environment + "/" + svc + "/" + r.Key
}

// Scope names where a secret lives, for messages: "service web" or "environment-wide".
func (r Ref) Scope() string {
	if r.Service == "" {
		return "environment-wide"
	}
	return "service " + r.Service
}

// Meta is what may be shown of one version of a secret: never its value.
type Meta struct {
	Ref
	Version   int       `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	// RollbackOf is the version this one copies (secret rollback), or 0.
	RollbackOf int `json:"rollback_of,omitempty"`
}

// Info is a secret's key with its current version.
type Info struct {
	Ref
	Version int `json:"version"`
	// CreatedAt is when the first version was put, ChangedAt when the
	// current one was.
	CreatedAt time.Time `json:"created_at"`
	ChangedAt time.Time `json:"changed_at"`
	// AccessedAt is when a value was last read (secret get) or delivered to
	// a process; zero: never.
	AccessedAt time.Time `json:"accessed_at,omitzero"`
}

// Store keeps secrets. It is small on purpose: a later target (AWS Secrets
// Manager, Kubernetes Secrets) can implement it. Values cross it only in
// Put and Value.
type Store interface {
	// Put stores a new version of each value, all or none, and returns their
	// metas. Without overwrite a key that has a value is ErrExists (and
	// nothing is stored).
	Put(ctx context.Context, values map[Ref][]byte, by string, overwrite bool) ([]Meta, error)
	// Value returns a version of a secret (0: the current one) and records
	// the access. ErrNotFound when there is none.
	Value(ctx context.Context, ref Ref, version int) ([]byte, Meta, error)
	// History lists a secret's versions, newest first.
	History(ctx context.Context, ref Ref) ([]Meta, error)
	// List returns the secrets of an environment: the environment-wide ones
	// and every service's, or only service's and the environment-wide ones
	// when service is not empty.
	List(ctx context.Context, project, environment, service string) ([]Info, error)
	// Rollback makes a new version of ref with the value of version to.
	Rollback(ctx context.Context, ref Ref, to int, by string) (Meta, error)
	// Delete removes a secret and every version of it.
	Delete(ctx context.Context, ref Ref) error
}

// Pin is one secret a release receives: variable Name gets version Version
// of Key (the service's own when Service is set, else the
// environment-wide one).
type Pin struct {
	Name    string `json:"name"`
	Key     string `json:"key"`
	Service string `json:"service,omitempty"`
	Version int    `json:"version"`
}

// Ref is the secret a pin names.
func (p Pin) Ref(project, environment string) Ref {
	return Ref{Project: project, Environment: environment, Service: p.Service, Key: p.Key}
}

// Label is "v3" for the service's own key, "v3 (environment-wide)" else.
func (p Pin) Label() string {
	if p.Service == "" {
		return fmt.Sprintf("v%d (environment-wide)", p.Version)
	}
	return fmt.Sprintf("v%d", p.Version)
}

// Resolve pins the current version of each key a service names (variable
// name -> key), from list (List of the service): the service's own key
// first, then the environment-wide one. missing lists the keys that have
// neither, sorted.
func Resolve(service string, names map[string]string, list []Info) (pins []Pin, missing []string) {
	own, shared := map[string]Info{}, map[string]Info{}
	for _, in := range list {
		switch in.Service {
		case service:
			own[in.Key] = in
		case "":
			shared[in.Key] = in
		}
	}
	vars := make([]string, 0, len(names))
	for v := range names {
		vars = append(vars, v)
	}
	sort.Strings(vars)
	seen := map[string]bool{}
	for _, v := range vars {
		key := names[v]
		if in, ok := own[key]; ok {
			pins = append(pins, Pin{Name: v, Key: key, Service: service, Version: in.Version})
		} else if in, ok := shared[key]; ok {
			pins = append(pins, Pin{Name: v, Key: key, Version: in.Version})
		} else if !seen[key] {
			seen[key] = true
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	return pins, missing
}

// CheckValue refuses an empty or oversized value, naming the secret only.
func CheckValue(ref Ref, v []byte) error {
	if len(v) == 0 {
		return fmt.Errorf("secret %s: the value is empty; give a value (an empty secret is never what was meant)", ref.Key)
	}
	if len(v) > MaxValue {
		return fmt.Errorf("secret %s: the value is %d bytes, more than the %d allowed", ref.Key, len(v), MaxValue)
	}
	return nil
}

// ExternalVersionID names one version of a secret in a store outside
// Runway (AWS Secrets Manager's VersionId, which its PutSecretValue takes
// as ClientRequestToken): a UUID-shaped digest of the version's identity
// (ref, version number and the instant it was made), so that writing it
// again is idempotent and a secret deleted and made again never reuses an
// id. Nothing of the value goes in.
func ExternalVersionID(ref Ref, version int, createdAt time.Time) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "runway secret version\x00%s\x00%s\x00%s\x00%s\x00%d\x00%d",
		ref.Project, ref.Environment, ref.Service, ref.Key, version, createdAt.UnixNano()))
	h := hex.EncodeToString(sum[:16])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
