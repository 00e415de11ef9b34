package auth

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/store"
)

// Why a token is refused. The API answers each with 401 and says which, so
// a user knows to get a new token; none of them quotes the token.
var (
	ErrNoToken  = errors.New("no API token")
	ErrUnknown  = errors.New("unknown API token")
	ErrExpired  = errors.New("API token expired")
	ErrRevoked  = errors.New("API token revoked")
	ErrDisabled = errors.New("user disabled")
)

// Authenticator turns bearer tokens into principals.
type Authenticator struct {
	Store store.Store
	Now   func() time.Time
}

// Authenticate checks an Authorization header value and returns the caller.
func (a *Authenticator) Authenticate(ctx context.Context, header string) (*Principal, error) {
	if header == "" {
		return nil, ErrNoToken
	}
	tok, err := ParseBearer(header)
	if err != nil {
		return nil, err
	}
	hash := HashToken(tok)
	t, err := a.Store.TokenByHash(ctx, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrUnknown
	}
	if err != nil {
		return nil, err
	}
	if !hashEqual(t.Hash, hash) {
		return nil, ErrUnknown
	}
	now := a.now()
	if !t.RevokedAt.IsZero() {
		return nil, fmt.Errorf("%w (token %s, at %s)", ErrRevoked, t.ID, t.RevokedAt.Format(time.RFC3339))
	}
	if !t.ExpiresAt.IsZero() && !now.Before(t.ExpiresAt) {
		return nil, fmt.Errorf("%w (token %s, at %s)", ErrExpired, t.ID, t.ExpiresAt.Format(time.RFC3339))
	}
	u, err := a.Store.GetUser(ctx, t.User)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, fmt.Errorf("%w: %s", ErrDisabled, u.Name)
	}
	roles, err := ParseRoles(u.Roles)
	if err != nil {
		return nil, fmt.Errorf("stored roles of %s: %w", u.Name, err)
	}
	// Last use is kept to the minute: a write on every request would
	// contend with the engine's for the database.
	if now.Sub(t.LastUsedAt) >= time.Minute {
		_ = a.Store.TouchToken(ctx, t.ID, now)
	}
	return &Principal{User: u.Name, Roles: roles, TokenID: t.ID}, nil
}

func (a *Authenticator) now() time.Time {
	if a.Now == nil {
		return time.Now()
	}
	return a.Now()
}

// TokenStore is where Issue records a token: the store, or a transaction of it.
type TokenStore interface {
	CreateToken(ctx context.Context, t *store.Token) error
}

// Issue makes a token for user, stores its hash and returns the token (the
// only time it exists outside the caller) with its record.
func Issue(ctx context.Context, st TokenStore, user, name string, expires time.Time, now time.Time) (string, *store.Token, error) {
	tok, err := NewToken()
	if err != nil {
		return "", nil, err
	}
	t := &store.Token{ID: "tok_" + strings.ToLower(store.NewID(now)), User: user, Name: name, Hash: HashToken(tok), CreatedAt: now, ExpiresAt: expires}
	if err := st.CreateToken(ctx, t); err != nil {
		return "", nil, err
	}
	return tok, t, nil
}

// ensureTokenFile gives user admin a new token in tokenFile when the file is
// missing (deleted to have a new one made, or a database restored into a
// new data dir), as long as admin exists and is enabled.
func ensureTokenFile(ctx context.Context, st store.Store, tokenFile string, now time.Time) error {
	if _, err := os.Stat(tokenFile); !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	u, err := st.GetUser(ctx, AdminUser)
	if errors.Is(err, store.ErrNotFound) || (err == nil && u.Disabled) {
		return nil
	}
	if err != nil {
		return err
	}
	tok, _, err := Issue(ctx, st, AdminUser, "admin.token", time.Time{}, now)
	if err != nil {
		return err
	}
	if err := fsutil.WriteToken(tokenFile, tok); err != nil {
		return fmt.Errorf("write admin token: %w", err)
	}
	return nil
}

// AdminUser is the user a server creates on its first start.
const AdminUser = "admin"

// Bootstrap creates user admin (global_admin) when the server has no users
// yet, and writes its token to tokenFile (0600). A token file left by a
// server from before users existed is adopted as admin's token, so its
// holders keep working. With users already there and no token file, admin
// gets a new token in it. It reports whether it created the user.
func Bootstrap(ctx context.Context, st store.Store, tokenFile string, now time.Time) (bool, error) {
	users, err := st.ListUsers(ctx)
	if err != nil {
		return false, err
	}
	if len(users) > 0 {
		return false, ensureTokenFile(ctx, st, tokenFile, now)
	}
	u := &store.User{Name: AdminUser, Roles: []string{GlobalAdmin}, CreatedBy: "bootstrap"}
	if err := st.CreateUser(ctx, u); errors.Is(err, store.ErrExists) {
		// Another server on the same store (a replica starting at the same
		// moment) made admin first: this one is a server with users.
		return false, ensureTokenFile(ctx, st, tokenFile, now)
	} else if err != nil {
		return false, err
	}
	if b, err := fsutil.ReadToken(tokenFile); err == nil {
		tok, perr := ParseToken(b)
		if perr != nil {
			return false, fmt.Errorf("admin token %s: %w; delete it to have a new one made", tokenFile, perr)
		}
		t := &store.Token{ID: "tok_" + strings.ToLower(store.NewID(now)), User: AdminUser, Name: "admin.token", Hash: HashToken(tok), CreatedAt: now}
		return true, st.CreateToken(ctx, t)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("read admin token: %w; delete it to have a new one made", err)
	}
	tok, _, err := Issue(ctx, st, AdminUser, "admin.token", time.Time{}, now)
	if err != nil {
		return false, err
	}
	if err := fsutil.WriteToken(tokenFile, tok); err != nil {
		return false, fmt.Errorf("write admin token: %w", err)
	}
	return true, nil
}
