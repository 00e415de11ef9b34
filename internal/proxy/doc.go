// Package proxy is the HTTP(S) load balancer of the local target's data plane:
// it routes requests by Host and path prefix to the instances of a service,
// splits traffic between groups by weight, drains removed targets, and
// terminates TLS with certificates issued on demand by the local CA
// (internal/localca).
//
// The agent embeds it through this small contract:
//
//	p, err := proxy.New(proxy.Options{...})  // listeners, CA dir, drain timeout, metrics, logs
//	err = p.Start(ctx)                        // bind HTTP and HTTPS, serve in the background
//	err = p.Update(cfg)                       // swap the whole routing table atomically
//	err = p.Drain(ctx, group, instances, d)   // wait (at most d) until removed targets are idle
//	p.Pause(key, maxHold) / p.Resume(key)      // key: agentapi.RouteKey{Project, Environment, Service, Preview}
//	p.Stats(key, window)                      // rolling per-group agentapi.WindowStats for canary analysis
//	p.Counters(key)                           // monotonic served/failed counts for a release summary
//	p.CACertPath()                            // for `runway agent ca`
//	p.Shutdown(ctx) / p.Close()
//
// Connections (read first): every HTTP/1 connection — plain, and TLS when
// ALPN chose http/1.1 — is read through the framing guard (h1guard.go),
// which refuses before net/http parses anything what nginx refuses and
// net/http would take (Content-Length with Transfer-Encoding, Content-Length
// twice, Transfer-Encoding in HTTP/1.0, obsolete line folding, heads over 64
// KiB, bad chunk lines; docs/http-framing.md is the table against nginx).
// The TLS listener handshakes itself (tlslisten.go) and passes h2
// connections through a frame shim (h2shim.go) that mends where net/http's
// HTTP/2 server departs from RFC 9113 (duplicate SETTINGS, connection-specific
// fields), so the proxy passes h2spec --strict in full.
//
// Request path (read in this order): handler.go (route lookup, maintenance,
// pause, target choice) → balancer.go (smooth weighted round robin between
// groups, power of two choices within a group) → forward.go (httputil
// reverse proxy, one retry on a failed dial, passive ejection; h1pool.go is
// the goroutine-free upstream path for bodiless GET/HEAD/OPTIONS, the rest
// uses http.Transport) → metrics.go, stats.go, accesslog.go (accounting
// when the response is done). The HTTP/1.1 fast path (fastpath.go) serves
// plain requests on its own loop with the same decisions, reading plain
// response heads in place (h1resp.go) and joining each write with the wait
// for the answer (h1io.go).
//
// Limits (docs/timeouts.md): a request body must arrive within
// Options.Limits.Body (408, not counted as a failure of the instance), a
// target must send its response headers within ResponseHeaderTimeout (504,
// never sent again), and a target gets at most MaxConnsPerTarget requests in
// flight (over it another target of the route, else 503).
//
// Decisions worth knowing: a route is identified by its key
// (agentapi.RouteKey: project, environment, service, preview), and everything
// kept per route — counters, statistics, pause, sticky cookie, metric and
// access-log labels — is keyed by it, so two projects' "web" never mix and a
// service named "web-preview" is not the preview of "web". CheckRoute and
// CheckRoutes are the one rule of what a routing table may hold (the agent
// checks routes with them before it stores one): exact host names only
// (naming.CheckHost; no wildcards), one route per host and path prefix, "/"
// being the same prefix as "". X-Forwarded-For is appended to (like nginx's
// $proxy_add_x_forwarded_for); a pause holds requests until Resume or its
// maximum hold, then lets them through (it never fails them); passive ejection
// takes 2 consecutive connection failures and lasts 1s, doubling per ejection
// up to 30s; a group whose targets are all ejected gets no traffic (the route
// falls back to its other groups, else 503). The route key, the limits of a
// route (MaxBackends, MaxWeight, ...), the default drain and the statistics
// window are the agent API's (internal/agentapi), so the planner and
// validation read the same numbers the proxy enforces.
//
// The routing table (table.go) is immutable and published through an
// atomic.Pointer: requests never take a lock and Update never blocks them.
// Per-target state that must survive table swaps (in-flight count, ejection,
// metric handles) lives in target.go and is carried from one table to the
// next by a registry that only Update, Drain and scrapes touch.
//
// Stopping (graceful.go): the listeners close first, then the proxy waits for
// the first request of every connection it accepted before http.Server's
// Shutdown (which would drop it); behind `runway up` or systemd the socket
// stays open and the next agent accepts what this one did not.
//
// Draining: Update removes targets from the table (no new request reaches them
// afterwards); Drain then returns once every request that was already on them
// — long requests, streamed responses and open WebSockets included — has
// finished, or the drain timeout of that call passed (ErrDrainTimeout). At the
// timeout, WebSockets still open get a close frame 1001 "going away" and
// streamed responses end cleanly (goaway.go) instead of being cut when the
// instance stops. The agent stops the processes only after Drain returns.
package proxy
