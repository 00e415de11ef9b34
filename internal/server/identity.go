package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/audit"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/store"
)

// identity implements api.Identity over the store: users, tokens, request
// ids and the audit log.
type identity struct {
	st    store.Store
	authn *auth.Authenticator
	log   *audit.Log
	now   func() time.Time
}

var _ api.Identity = (*identity)(nil)

// NewIdentity returns the API's identity over st, with the audit log's head
// file at auditHead.
func NewIdentity(st store.Store, auditHead string, now func() time.Time) api.Identity {
	return newIdentity(st, audit.New(st, auditHead), now)
}

func newIdentity(st store.Store, log *audit.Log, now func() time.Time) api.Identity {
	if now == nil {
		now = time.Now
	}
	return &identity{st: st, authn: &auth.Authenticator{Store: st, Now: now}, log: log, now: now}
}

func (i *identity) Authenticate(ctx context.Context, header string) (*auth.Principal, error) {
	return i.authn.Authenticate(ctx, header)
}

// RememberRequest implements api.Identity with the key/value table: request
// id -> digest of the request, and request id -> the release it made.
func (i *identity) RememberRequest(ctx context.Context, id, digest string) (string, string, error) {
	// Atomic: of two concurrent requests with one id, one goes on.
	prev, stored, err := i.st.PutIfAbsent(ctx, nsRequestDigests, id, []byte(digest))
	if err != nil || stored {
		return "", "", err
	}
	made := ""
	if rel, err := i.st.Get(ctx, nsRequests, id); err == nil {
		made = "release " + string(rel)
	}
	return string(prev), made, nil
}

func (i *identity) ReleaseTarget(ctx context.Context, id string) (auth.Target, error) {
	r, err := i.st.GetRelease(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return auth.Target{}, apiwire.Problemf(http.StatusNotFound, apiwire.KindNotFound, "no release %s", id)
	}
	if err != nil {
		return auth.Target{}, err
	}
	return auth.Target{Project: r.Project, Environment: r.Environment}, nil
}

func (i *identity) Audit(ctx context.Context, e apiwire.AuditEntry) error {
	return i.log.Append(ctx, auditEntry(e))
}

func auditEntry(e apiwire.AuditEntry) *store.AuditEntry {
	return &store.AuditEntry{At: e.At, Actor: e.Actor, TokenID: e.TokenID, Source: e.Source, Action: e.Action,
		Project: e.Project, Environment: e.Environment, Target: e.Target, RequestDigest: e.RequestDigest, Outcome: e.Outcome}
}

// change makes an identity change and records rec, with the outcome of
// success, in one transaction.
func (i *identity) change(ctx context.Context, rec apiwire.AuditEntry, status int, fn func(store.IdentityTx) error) error {
	rec.Outcome = api.Outcome(status, "")
	return i.log.AppendWith(ctx, auditEntry(rec), fn)
}

func (i *identity) Whoami(ctx context.Context, p *auth.Principal) (*apiwire.Whoami, error) {
	out := &apiwire.Whoami{User: p.User, Roles: auth.RoleStrings(p.Roles), TokenID: p.TokenID, DeployTo: auth.DeployScopes(p.Roles)}
	if t, err := i.st.GetToken(ctx, p.TokenID); err == nil && !t.ExpiresAt.IsZero() {
		at := t.ExpiresAt
		out.TokenExpiresAt = &at
	}
	return out, nil
}

func userToAPI(u *store.User) *apiwire.User {
	roles := u.Roles
	if roles == nil {
		roles = []string{}
	}
	return &apiwire.User{Name: u.Name, Roles: roles, Disabled: u.Disabled, CreatedBy: u.CreatedBy, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func tokenToAPI(t *store.Token) *apiwire.Token {
	out := &apiwire.Token{ID: t.ID, User: t.User, Name: t.Name, CreatedAt: t.CreatedAt}
	for _, f := range []struct {
		v   time.Time
		dst **time.Time
	}{{t.ExpiresAt, &out.ExpiresAt}, {t.RevokedAt, &out.RevokedAt}, {t.LastUsedAt, &out.LastUsedAt}} {
		if !f.v.IsZero() {
			v := f.v
			*f.dst = &v
		}
	}
	return out
}

func (i *identity) expiry(s string) time.Time {
	d, _ := api.ParseExpiresIn("expires_in", s) // validated by the API
	if d == 0 {
		return time.Time{}
	}
	return i.now().Add(d).UTC()
}

func (i *identity) CreateUser(ctx context.Context, req apiwire.CreateUserRequest, actor string, rec apiwire.AuditEntry) (*apiwire.UserCreated, error) {
	roles, err := auth.ParseRoles(req.Roles)
	if err != nil {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"roles\": %v", err)
	}
	u := &store.User{Name: req.Name, Roles: auth.RoleStrings(roles), CreatedBy: actor}
	name := req.TokenName
	if name == "" {
		name = req.Name
	}
	var tok string
	var t *store.Token
	// The user, its first token and the audit entry: all or nothing.
	err = i.change(ctx, rec, http.StatusCreated, func(tx store.IdentityTx) error {
		if err := tx.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
			return apiwire.Problemf(http.StatusConflict, apiwire.KindUserExists, "user %s already exists; change its roles with `runway user update %s`", req.Name, req.Name)
		} else if err != nil {
			return err
		}
		tok, t, err = auth.Issue(ctx, tx, u.Name, name, i.expiry(req.ExpiresIn), i.now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &apiwire.UserCreated{User: userToAPI(u), Token: tok, TokenInfo: tokenToAPI(t)}, nil
}

func (i *identity) Users(ctx context.Context) ([]*apiwire.User, error) {
	list, err := i.st.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*apiwire.User, 0, len(list))
	for _, u := range list {
		out = append(out, userToAPI(u))
	}
	return out, nil
}

func (i *identity) getUser(ctx context.Context, name string) (*store.User, error) {
	u, err := i.st.GetUser(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, unknownUser(name)
	}
	return u, err
}

func unknownUser(name string) error {
	return apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownUser, "no user %s; `runway user list` shows the users", name)
}

func (i *identity) User(ctx context.Context, name string) (*apiwire.User, error) {
	u, err := i.getUser(ctx, name)
	if err != nil {
		return nil, err
	}
	out := userToAPI(u)
	toks, err := i.st.ListTokens(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, t := range toks {
		out.Tokens = append(out.Tokens, tokenToAPI(t))
	}
	return out, nil
}

func (i *identity) UpdateUser(ctx context.Context, name string, req apiwire.UpdateUserRequest, actor string, rec apiwire.AuditEntry) (*apiwire.User, error) {
	add, err := auth.ParseRoles(req.AddRoles)
	if err != nil {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"add_roles\": %v", err)
	}
	remove, err := auth.ParseRoles(req.RemoveRoles)
	if err != nil {
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"remove_roles\": %v", err)
	}
	// Read, check and write in the change's transaction, so two updates
	// never both remove the last admin.
	err = i.change(ctx, rec, http.StatusOK, func(tx store.IdentityTx) error {
		u, err := tx.GetUser(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return unknownUser(name)
		} else if err != nil {
			return err
		}
		have := map[string]bool{}
		for _, r := range u.Roles {
			have[r] = true
		}
		for _, r := range remove {
			if !have[r.String()] {
				return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "user %s does not have role %s (it has %s)", name, r, strings.Join(u.Roles, ", "))
			}
			delete(have, r.String())
		}
		for _, r := range add {
			have[r.String()] = true
		}
		roles := make([]string, 0, len(have))
		for r := range have {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		disabled := u.Disabled
		if req.Disabled != nil {
			disabled = *req.Disabled
		}
		if err := keepAnAdmin(ctx, tx, name, roles, disabled); err != nil {
			return err
		}
		u.Roles, u.Disabled = roles, disabled
		return tx.UpdateUser(ctx, u)
	})
	if err != nil {
		return nil, err
	}
	return i.User(ctx, name)
}

// keepAnAdmin refuses the change that would leave no enabled global_admin:
// nobody could manage users any more.
func keepAnAdmin(ctx context.Context, tx store.IdentityTx, name string, roles []string, disabled bool) error {
	if !disabled && contains(roles, auth.GlobalAdmin) {
		return nil
	}
	users, err := tx.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Name != name && !u.Disabled && contains(u.Roles, auth.GlobalAdmin) {
			return nil
		}
	}
	return apiwire.Problemf(http.StatusConflict, apiwire.KindLastAdmin, "user %s is the last enabled global_admin; give another user global_admin first", name)
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func (i *identity) CreateToken(ctx context.Context, p *auth.Principal, req apiwire.CreateTokenRequest, rec apiwire.AuditEntry) (*apiwire.TokenCreated, error) {
	user := p.User
	if req.User != "" && req.User != p.User {
		if err := p.Authorize(auth.ActionUserWrite, auth.Target{}); err != nil {
			return nil, apiwire.Problemf(http.StatusForbidden, apiwire.KindForbidden, "a token for another user: %v", err)
		}
		if _, err := i.getUser(ctx, req.User); err != nil {
			return nil, err
		}
		user = req.User
	}
	name := req.Name
	if name == "" {
		name = user
	}
	var tok string
	var t *store.Token
	err := i.change(ctx, rec, http.StatusCreated, func(tx store.IdentityTx) (err error) {
		tok, t, err = auth.Issue(ctx, tx, user, name, i.expiry(req.ExpiresIn), i.now())
		return err
	})
	if err != nil {
		return nil, err
	}
	return &apiwire.TokenCreated{Token: tok, TokenInfo: tokenToAPI(t)}, nil
}

func (i *identity) Tokens(ctx context.Context, p *auth.Principal, user string) ([]*apiwire.Token, error) {
	switch {
	case user == "" || user == p.User:
		user = p.User
	default:
		if err := p.Authorize(auth.ActionUserRead, auth.Target{}); err != nil {
			return nil, apiwire.Problemf(http.StatusForbidden, apiwire.KindForbidden, "the tokens of another user: %v", err)
		}
		if user == "*" {
			user = ""
		}
	}
	list, err := i.st.ListTokens(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]*apiwire.Token, 0, len(list))
	for _, t := range list {
		out = append(out, tokenToAPI(t))
	}
	return out, nil
}

func (i *identity) RevokeToken(ctx context.Context, p *auth.Principal, id string, rec apiwire.AuditEntry) (*apiwire.Token, error) {
	t, err := i.st.GetToken(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownToken, "no token %s; `runway token list` shows yours", id)
	}
	if err != nil {
		return nil, err
	}
	if t.User != p.User {
		if err := p.Authorize(auth.ActionUserWrite, auth.Target{}); err != nil {
			// Another user's token is not the caller's to know about.
			return nil, apiwire.Problemf(http.StatusNotFound, apiwire.KindUnknownToken, "no token %s; `runway token list` shows yours", id)
		}
	}
	if err := i.change(ctx, rec, http.StatusOK, func(tx store.IdentityTx) error { return tx.RevokeToken(ctx, id) }); errors.Is(err, store.ErrFinished) {
		return nil, apiwire.Problemf(http.StatusConflict, apiwire.KindTokenRevoked, "token %s was already revoked", id)
	} else if err != nil {
		return nil, err
	}
	t, err = i.st.GetToken(ctx, id)
	if err != nil {
		return nil, err
	}
	return tokenToAPI(t), nil
}

func (i *identity) AuditLog(ctx context.Context, f apiwire.AuditFilter) ([]*apiwire.AuditEntry, error) {
	list, err := i.st.ListAudit(ctx, store.AuditFilter{Since: f.Since, Actor: f.Actor, Environment: f.Environment, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]*apiwire.AuditEntry, 0, len(list))
	for _, e := range list {
		out = append(out, &apiwire.AuditEntry{Seq: e.Seq, At: e.At, Actor: e.Actor, TokenID: e.TokenID, Source: e.Source, Action: e.Action,
			Project: e.Project, Environment: e.Environment, Target: e.Target, RequestDigest: e.RequestDigest, Outcome: e.Outcome, Hash: e.Hash})
	}
	return out, nil
}

func (i *identity) VerifyAudit(ctx context.Context) (*apiwire.AuditReport, error) {
	rep, err := i.log.Verify(ctx)
	if err != nil {
		return nil, fmt.Errorf("verify audit log: %w", err)
	}
	return &apiwire.AuditReport{OK: rep.OK, Entries: rep.Entries, HeadSeq: rep.HeadSeq, BadSeq: rep.BadSeq, Problem: rep.Problem}, nil
}
