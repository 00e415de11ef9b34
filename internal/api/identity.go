package api

import (
	"context"
	"net/http"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
)

// Identity is what the API needs to know who calls and to record what they
// did: tokens, users, request ids and the audit log.
type Identity interface {
	// Authenticate resolves an Authorization header value; errors are the
	// auth package's (ErrNoToken, ErrExpired, ...), never quoting the token.
	Authenticate(ctx context.Context, header string) (*auth.Principal, error)
	// RememberRequest records a request id with the digest of its request;
	// when the id was seen before it returns the digest recorded then and
	// what that request made ("release 01J...") without recording anything.
	RememberRequest(ctx context.Context, id, digest string) (prev, made string, err error)
	// ReleaseTarget is where a release belongs (for the rules of routes
	// naming a release by id); a *Problem (404) when there is no such release.
	ReleaseTarget(ctx context.Context, id string) (auth.Target, error)
	// Audit appends an entry to the audit log.
	Audit(ctx context.Context, e apiwire.AuditEntry) error

	Whoami(ctx context.Context, p *auth.Principal) (*apiwire.Whoami, error)
	// The changes below store rec (with their outcome) in their own
	// transaction: the change and its audit entry are written together.
	CreateUser(ctx context.Context, req apiwire.CreateUserRequest, actor string, rec apiwire.AuditEntry) (*apiwire.UserCreated, error)
	Users(ctx context.Context) ([]*apiwire.User, error)
	User(ctx context.Context, name string) (*apiwire.User, error)
	UpdateUser(ctx context.Context, name string, req apiwire.UpdateUserRequest, actor string, rec apiwire.AuditEntry) (*apiwire.User, error)
	// CreateToken makes a token for the caller, or for req.User when the
	// caller may manage users.
	CreateToken(ctx context.Context, p *auth.Principal, req apiwire.CreateTokenRequest, rec apiwire.AuditEntry) (*apiwire.TokenCreated, error)
	// Tokens lists the caller's tokens, or user's (every user's with "*")
	// when the caller may read users.
	Tokens(ctx context.Context, p *auth.Principal, user string) ([]*apiwire.Token, error)
	RevokeToken(ctx context.Context, p *auth.Principal, id string, rec apiwire.AuditEntry) (*apiwire.Token, error)
	AuditLog(ctx context.Context, f apiwire.AuditFilter) ([]*apiwire.AuditEntry, error)
	VerifyAudit(ctx context.Context) (*apiwire.AuditReport, error)
}

type principalKey struct{}

func principalOf(r *http.Request) *auth.Principal {
	p, _ := r.Context().Value(principalKey{}).(*auth.Principal)
	return p
}
