package dashboard

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/client"
)

// CookieName is the session cookie's name.
const CookieName = "runway_session"

// session is a request's logged-in caller.
type session struct {
	c     *client.Client
	who   *apiwire.Whoami
	p     *auth.Principal
	csrf  string
	token string
}

// can reports whether the role table lets the caller do action on project
// and env: the buttons shown follow it, the API decides anyway.
func (s *session) can(action, project, env string) bool {
	return s.p.Allowed(auth.Action(action), auth.Target{Project: project, Environment: env})
}

// clientFor is an API client speaking as token, from the browser's address.
func (h *Handler) clientFor(token string) *client.Client {
	c, err := client.NewWithHTTP("http://runway.internal", token, &http.Client{Transport: apiTransport{h.opts.API}})
	if err != nil {
		panic(err) // the URL is a constant
	}
	return c
}

func apiCtx(r *http.Request) context.Context { return withRemote(r.Context(), r.RemoteAddr) }

// csrfToken binds a form to the session: an HMAC of a fixed label under
// the session's token, which only the server and the cookie know.
func csrfToken(token string) string {
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("runway dashboard form"))
	return hex.EncodeToString(m.Sum(nil))
}

// sameOrigin refuses a POST whose Origin (or, without it, Referer) names
// another site; browsers send Origin on every POST.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" || o == "null" {
		return o == ""
	}
	u, err := url.Parse(o)
	return err == nil && u.Host == r.Host
}

// withSession runs next with the caller's session, or sends the browser to
// the login page.
func (h *Handler) withSession(next func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, why := h.session(r)
		if s == nil {
			h.clearCookie(w, r)
			if r.Method != http.MethodGet || strings.HasSuffix(r.URL.Path, "/live") {
				http.Error(w, "no session: "+why+"; log in at "+Prefix+"login", http.StatusUnauthorized)
				return
			}
			q := url.Values{"next": {r.URL.RequestURI()}}
			if why != "" {
				q.Set("why", why)
			}
			http.Redirect(w, r, Prefix+"login?"+q.Encode(), http.StatusSeeOther)
			return
		}
		if r.Method == http.MethodPost {
			if !sameOrigin(r) {
				http.Error(w, "refused: the form was sent from another site (Origin "+r.Header.Get("Origin")+")", http.StatusForbidden)
				return
			}
			if !hmac.Equal([]byte(r.PostFormValue("csrf")), []byte(s.csrf)) {
				http.Error(w, "refused: the form's CSRF token does not belong to this session; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		next(w, r, s)
	}
}

// session reads the cookie's session; nil and why when there is none.
func (h *Handler) session(r *http.Request) (*session, string) {
	ck, err := r.Cookie(CookieName)
	if err != nil {
		return nil, ""
	}
	tok, err := auth.ParseToken(ck.Value)
	if err != nil {
		return nil, "the session cookie is not a session"
	}
	ti, err := h.opts.Tokens.TokenTimes(r.Context(), tok)
	if err != nil {
		return nil, "the session ended"
	}
	c := h.clientFor(tok)
	last := h.seen.last(ti.ID, ti.Created, ti.LastUsed)
	if idle := h.opts.Now().Sub(last); idle > h.opts.IdleTimeout {
		// Revoked, so the cookie is worth nothing wherever it is kept.
		if _, err := c.RevokeToken(apiCtx(r), ti.ID); err != nil && !client.IsKind(err, apiwire.KindTokenRevoked) {
			h.opts.Logger.Warn("revoke idle dashboard session", "token_id", ti.ID, "err", err)
		}
		return nil, "the session was idle for more than " + h.opts.IdleTimeout.String()
	}
	who, err := c.Whoami(apiCtx(r))
	if err != nil {
		return nil, "the session ended: " + err.Error()
	}
	h.seen.touch(ti.ID, h.opts.Now())
	roles, err := auth.ParseRoles(who.Roles)
	if err != nil {
		return nil, err.Error()
	}
	return &session{c: c, who: who, p: &auth.Principal{User: who.User, Roles: roles, TokenID: who.TokenID}, csrf: csrfToken(tok), token: tok}, ""
}

func (h *Handler) setCookie(w http.ResponseWriter, r *http.Request, token string) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: token, Path: Prefix, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: int(h.opts.MaxAge / time.Second)})
}

func (h *Handler) clearCookie(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(CookieName); err != nil {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: Prefix, HttpOnly: true, Secure: r.TLS != nil,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

type loginView struct {
	Why, Next, Error string
	// Code and User: a login link's code awaiting its confirmation.
	Code, User string
}

// loginPage shows the token form, or for a login link the button that
// spends its code: a GET changes nothing, so neither a link preview nor a
// link planted by someone else logs anybody in.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	v := loginView{Why: r.URL.Query().Get("why"), Next: safeNext(r.URL.Query().Get("next"))}
	if code := r.URL.Query().Get("code"); code != "" {
		who, err := h.checkCode(r, code)
		if err != nil {
			v.Error = err.Error()
			h.render(w, http.StatusUnauthorized, "login", nil, v)
			return
		}
		v.Code, v.User = code, who.User
	}
	h.render(w, http.StatusOK, "login", nil, v)
}

var errNotACode = errors.New("this login link is not valid: it was used, it expired (a link lives " + LoginCodeLifetime.String() + "), or it is not a login link; run `runway dashboard` again")

// checkCode reads a login code's user; the code must be a token made as a
// login code (named LoginCodeName, short-lived), so no other token is spent.
func (h *Handler) checkCode(r *http.Request, code string) (*apiwire.Whoami, error) {
	if _, err := auth.ParseToken(code); err != nil {
		return nil, errNotACode
	}
	c := h.clientFor(code)
	who, err := c.Whoami(apiCtx(r))
	if err != nil {
		return nil, errNotACode
	}
	toks, err := c.Tokens(apiCtx(r), "")
	if err != nil {
		return nil, errNotACode
	}
	for _, t := range toks {
		if t.ID == who.TokenID && t.Name == LoginCodeName && t.ExpiresAt != nil && t.ExpiresAt.Sub(t.CreatedAt) <= LoginCodeLifetime {
			return who, nil
		}
	}
	return nil, errNotACode
}

// login spends a login code, or takes a token from the form, for a new
// session token.
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		http.Error(w, "refused: the form was sent from another site", http.StatusForbidden)
		return
	}
	v := loginView{Next: safeNext(r.PostFormValue("next"))}
	var tok string
	var err error
	if code := r.PostFormValue("code"); code != "" {
		tok, err = h.spendCode(r, code)
	} else {
		tok, err = h.tokenLogin(r, strings.TrimSpace(r.PostFormValue("token")))
	}
	if err != nil {
		v.Error = err.Error()
		h.render(w, http.StatusUnauthorized, "login", nil, v)
		return
	}
	h.setCookie(w, r, tok)
	next := v.Next
	if next == "" {
		next = Prefix
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (h *Handler) newSession(r *http.Request, c *client.Client) (string, *apiwire.TokenCreated, error) {
	out, err := c.CreateToken(apiCtx(r), apiwire.CreateTokenRequest{Name: SessionName, ExpiresIn: h.opts.MaxAge.String()})
	if err != nil {
		return "", nil, err
	}
	return out.Token, out, nil
}

func (h *Handler) spendCode(r *http.Request, code string) (string, error) {
	who, err := h.checkCode(r, code)
	if err != nil {
		return "", err
	}
	c := h.clientFor(code)
	tok, _, err := h.newSession(r, c)
	if err != nil {
		return "", errNotACode
	}
	// One use: of two logins with one code, one revokes it first and the
	// other's new session is revoked again.
	if _, err := c.RevokeToken(apiCtx(r), who.TokenID); err != nil {
		sc := h.clientFor(tok)
		if sw, werr := sc.Whoami(apiCtx(r)); werr == nil {
			_, _ = sc.RevokeToken(apiCtx(r), sw.TokenID)
		}
		return "", errNotACode
	}
	return tok, nil
}

func (h *Handler) tokenLogin(r *http.Request, token string) (string, error) {
	if _, err := auth.ParseToken(token); err != nil {
		return "", errors.New("that is not a Runway API token (rwy_ and 64 hex digits); make one with `runway token create`")
	}
	tok, _, err := h.newSession(r, h.clientFor(token))
	if err != nil {
		return "", errors.New("the server refused the token: " + err.Error())
	}
	return tok, nil
}

// safeNext keeps a redirect inside the dashboard.
func safeNext(next string) string {
	if !strings.HasPrefix(next, Prefix) || strings.ContainsAny(next, "\\\r\n\t") {
		return ""
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return ""
	}
	// Where a browser ends up: "/ui/../v1" is not a dashboard page.
	if !strings.HasPrefix(path.Clean(u.Path)+"/", Prefix) {
		return ""
	}
	return next
}

func (h *Handler) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if _, err := s.c.RevokeToken(apiCtx(r), s.who.TokenID); err != nil {
		h.opts.Logger.Warn("revoke dashboard session at logout", "token_id", s.who.TokenID, "err", err)
	}
	h.clearCookie(w, r)
	http.Redirect(w, r, Prefix+"login?why="+url.QueryEscape("logged out"), http.StatusSeeOther)
}

// lastSeen keeps when this server last saw each session, to the request:
// the store's last use (auth.Authenticator writes it to the minute) covers
// sessions another server or an earlier run of this one saw.
type lastSeen struct {
	mu     sync.Mutex
	at     map[string]time.Time
	maxAge time.Duration
}

func (l *lastSeen) last(id string, created, stored time.Time) time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := created
	for _, c := range []time.Time{stored, l.at[id]} {
		if c.After(t) {
			t = c
		}
	}
	return t
}

func (l *lastSeen) touch(id string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.at == nil {
		l.at = map[string]time.Time{}
	}
	l.at[id] = now
	if len(l.at) > 1000 {
		// Sessions end within maxAge of any use: older entries are dead.
		for k, t := range l.at {
			if now.Sub(t) > l.maxAge {
				delete(l.at, k)
			}
		}
	}
}
