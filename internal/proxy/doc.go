// Package proxy is the HTTP(S) load balancer of the local target's data plane:
// it routes requests by Host and path prefix to the instances of a service,
// splits traffic between groups by weight, drains removed targets, and
// terminates TLS with certificates issued on demand by a local CA.
//
// The agent embeds it through this small contract:
//
//	p, err := proxy.New(proxy.Options{...})  // listeners, CA dir, drain timeout, metrics, logs
//	err = p.Start(ctx)                        // bind HTTP and HTTPS, serve in the background
//	err = p.Update(cfg)                       // swap the whole routing table atomically
//	err = p.Drain(ctx, group, instances)      // wait until removed targets are idle
//	p.Pause(env, svc, maxHold) / p.Resume(env, svc)
//	p.Stats(env, svc, window)                 // rolling per-group statistics for canary analysis
//	p.Counters(env, svc)                      // monotonic served/failed counts for a release summary
//	p.CACertPath()                            // for `runway agent ca`
//	p.Shutdown(ctx) / p.Close()
//
// Request path (read in this order): handler.go (route lookup, maintenance,
// pause, target choice) → balancer.go (smooth weighted round robin between
// groups, power of two choices within a group) → forward.go (httputil
// reverse proxy, one retry on a failed dial, passive ejection) → metrics.go,
// stats.go, accesslog.go (accounting when the response is done).
//
// The routing table (table.go) is immutable and published through an
// atomic.Pointer: requests never take a lock and Update never blocks them.
// Per-target state that must survive table swaps (in-flight count, ejection,
// metric handles) lives in target.go and is carried from one table to the
// next by a registry that only Update, Drain and scrapes touch.
//
// Draining: Update removes targets from the table (no new request reaches them
// afterwards); Drain then returns once every request that was already on them
// — long requests, streamed responses and open WebSockets included — has
// finished, or the drain timeout passed (ErrDrainTimeout). The agent stops the
// processes only after Drain returns.
package proxy
