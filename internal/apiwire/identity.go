package apiwire

import "time"

// User is a user as the API shows it; never a token.
type User struct {
	Name      string    `json:"name"`
	Roles     []string  `json:"roles"`
	Disabled  bool      `json:"disabled"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	Tokens    []*Token  `json:"tokens,omitempty"`
}

// Token is a token's record; the token itself is only in TokenCreated.
type Token struct {
	ID         string     `json:"id"`
	User       string     `json:"user"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// CreateUserRequest makes a user with its first token.
type CreateUserRequest struct {
	Name string `json:"name"`
	// Roles as users write them: "global_admin", "read_only",
	// "staging_admin", "staging_deployer", each but global_admin optionally
	// "@project".
	Roles       []string  `json:"roles"`
	TokenName   string    `json:"token_name,omitempty"`
	ExpiresIn   string    `json:"expires_in,omitempty"` // Go duration, such as 720h; empty: never
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// UserCreated answers a user's creation; Token is shown this once.
type UserCreated struct {
	User  *User  `json:"user"`
	Token string `json:"token"`
	// TokenInfo is the new token's record.
	TokenInfo *Token `json:"token_info"`
}

// UpdateUserRequest changes a user's roles or disables it.
type UpdateUserRequest struct {
	AddRoles    []string  `json:"add_roles,omitempty"`
	RemoveRoles []string  `json:"remove_roles,omitempty"`
	Disabled    *bool     `json:"disabled,omitempty"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// CreateTokenRequest makes a token.
type CreateTokenRequest struct {
	// User is whose token it is (default: the caller's); another user's
	// needs global_admin.
	User        string    `json:"user,omitempty"`
	Name        string    `json:"name,omitempty"`
	ExpiresIn   string    `json:"expires_in,omitempty"`
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// TokenCreated answers a token's creation; Token is shown this once.
type TokenCreated struct {
	Token     string `json:"token"`
	TokenInfo *Token `json:"token_info"`
}

// RevokeTokenRequest revokes a token; it carries only the request's id and time.
type RevokeTokenRequest struct {
	RequestID   string    `json:"request_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Whoami is the caller as the server sees it.
type Whoami struct {
	User           string     `json:"user"`
	Roles          []string   `json:"roles"`
	TokenID        string     `json:"token_id"`
	TokenExpiresAt *time.Time `json:"token_expires_at,omitempty"`
	// DeployTo says where the caller may deploy, such as "staging of project hello".
	DeployTo []string `json:"deploy_to"`
}

// AuditEntry is one entry of the audit log.
type AuditEntry struct {
	Seq           int64     `json:"seq"`
	At            time.Time `json:"at"`
	Actor         string    `json:"actor"`
	TokenID       string    `json:"token_id"`
	Source        string    `json:"source"`
	Action        string    `json:"action"`
	Project       string    `json:"project,omitempty"`
	Environment   string    `json:"environment,omitempty"`
	Target        string    `json:"target"`
	RequestDigest string    `json:"request_digest"`
	Outcome       string    `json:"outcome"`
	Hash          string    `json:"hash,omitempty"`
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Since       time.Time
	Actor       string
	Environment string
	Limit       int
}

// AuditReport is the result of verifying the audit log.
type AuditReport struct {
	OK      bool   `json:"ok"`
	Entries int    `json:"entries"`
	HeadSeq int64  `json:"head_seq"`
	BadSeq  int64  `json:"bad_seq,omitempty"`
	Problem string `json:"problem,omitempty"`
}
