package server

import (
	"context"
	"net/http"

	"github.com/runwayhq/runway/internal/auth"
	"github.com/runwayhq/runway/internal/dashboard"
	"github.com/runwayhq/runway/internal/store"
)

// TokenTimes tells the dashboard when a session token was made and last
// used, from the store, before the API touches it.
type TokenTimes struct{ Store store.Store }

// TokenTimes implements dashboard.TokenTimes.
func (t TokenTimes) TokenTimes(ctx context.Context, token string) (dashboard.TokenInfo, error) {
	tk, err := t.Store.TokenByHash(ctx, auth.HashToken(token))
	if err != nil {
		return dashboard.TokenInfo{}, err
	}
	return dashboard.TokenInfo{ID: tk.ID, Created: tk.CreatedAt, LastUsed: tk.LastUsedAt}, nil
}

// withDashboard serves the dashboard under /ui/ beside the API, which it
// calls in process for everything it shows and does.
func withDashboard(apiHandler http.Handler, st store.Store, opts Options) (http.Handler, error) {
	d, err := dashboard.New(dashboard.Options{API: apiHandler, Tokens: TokenTimes{st}, Logger: opts.Logger, Now: opts.Now,
		IdleTimeout: opts.DashboardIdle})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(dashboard.Prefix, d)
	mux.Handle("/", apiHandler)
	return mux, nil
}
