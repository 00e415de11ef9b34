package apiwire

import "time"

// The secrets API (docs/api.md, "Secrets"). Values cross the wire only in
// SecretPutRequest and SecretValue (the answer of an explicit, audited read).

// SecretPutRequest is PUT /v1/projects/{project}/environments/{env}/secrets:
// a new version of each value, all or none.
type SecretPutRequest struct {
	// Service is empty for environment-wide secrets.
	Service string            `json:"service,omitempty"`
	Values  map[string]string `json:"values"`
	// Overwrite makes a new version of keys that have one; without it such
	// a key refuses the whole request.
	Overwrite bool `json:"overwrite,omitempty"`
	// Salt is random (the client chooses it), so the request's digest, which
	// the server keeps for replay protection, says nothing of the values.
	Salt        string    `json:"salt"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// SecretInfo is a secret's key with its current version (secret list).
type SecretInfo struct {
	Key        string     `json:"key"`
	Service    string     `json:"service,omitempty"` // empty: environment-wide
	Version    int        `json:"version"`
	CreatedAt  time.Time  `json:"created_at"`
	ChangedAt  time.Time  `json:"changed_at"`
	AccessedAt *time.Time `json:"accessed_at,omitempty"`
}

// SecretVersion is one version of a secret, never its value.
type SecretVersion struct {
	Key        string    `json:"key"`
	Service    string    `json:"service,omitempty"`
	Version    int       `json:"version"`
	CreatedAt  time.Time `json:"created_at"`
	CreatedBy  string    `json:"created_by"`
	RollbackOf int       `json:"rollback_of,omitempty"`
}

// SecretValue is the answer of GET .../secrets/{key}: the one response that
// carries a value.
type SecretValue struct {
	SecretVersion
	Value string `json:"value"`
}

// SecretRollbackRequest is POST .../secrets/{key}/rollback: a new version
// with the value of version To.
type SecretRollbackRequest struct {
	Service     string    `json:"service,omitempty"`
	To          int       `json:"to"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// SecretDeleteRequest is POST .../secrets/{key}/delete. A secret a running
// release pins is refused (409 SecretInUse) unless Force.
type SecretDeleteRequest struct {
	Service     string    `json:"service,omitempty"`
	Force       bool      `json:"force,omitempty"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// SecretDeleted answers a delete: the releases still pinning it (forced).
type SecretDeleted struct {
	Key      string   `json:"key"`
	Service  string   `json:"service,omitempty"`
	PinnedBy []string `json:"pinned_by,omitempty"`
}

// RotateMasterKeyRequest is POST /v1/secrets/rotate-master-key.
type RotateMasterKeyRequest struct {
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// MasterKeyRotated answers a rotation.
type MasterKeyRotated struct {
	OldKeyID string `json:"old_key_id"`
	NewKeyID string `json:"new_key_id"`
	Versions int    `json:"versions"`
}
