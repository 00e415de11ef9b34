// Package dashboard is Runway's web dashboard, served by `runway server`
// under /ui/: server-rendered pages (html/template), live updates over
// server-sent events read by the browser's own EventSource, and one small
// hand-written script (static/live.js); every page reads without JavaScript.
//
// Read in this order:
//   - inproc.go: the dashboard is a client of the server API like the CLI.
//     It uses internal/client over a transport that hands each request to
//     the API handler in process, with the browser's address as the
//     caller's. Every read and every action therefore passes the API's one
//     guard: authentication, the role table (auth.Rules), request ids and
//     freshness, and the audit log. The dashboard decides nothing the API
//     decides; it only hides the buttons the role table would refuse
//     (auth.Principal.Allowed, the same code).
//   - session.go: a session is an API token of its own ("dashboard
//     session", expiring at the session's absolute limit), kept in an
//     HttpOnly, SameSite=Strict cookie (Secure over TLS). `runway
//     dashboard` makes a one-time login code: a token that lives two
//     minutes, which the login page exchanges for a session token and then
//     revokes (one use). The token form does the same with a user's own
//     token, which it leaves alone. A session idle longer than the idle
//     limit is revoked on its next request; `runway token revoke` and the
//     logout button end one at once.
//   - pages.go: the pages, each made of API calls and one template.
//   - live.go: the live release timeline and the logs follow (SSE).
//   - actions.go: rollback and halt: a confirmation page, then the API call;
//     each form carries a CSRF token bound to the session.
package dashboard
