package server

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/api"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/engine"
	"github.com/runwayhq/runway/internal/store"
)

// TestDeployRetriedAfterCrash: a server killed after it mapped a request id
// to a release id but before it recorded the release; the retried request
// records the release under that id, and any further retry returns it.
func TestDeployRetriedAfterCrash(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "runway.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	// A closed engine only records releases: nothing runs.
	eng := engine.New(st, nil, engine.Options{})
	eng.Close()
	b := &backend{st: st, eng: eng}

	manifest, _ := json.Marshal(config.Service{Name: "hello", Environment: "dev", Version: "1", Command: []string{"hello"}})
	req := api.DeployRequest{Environment: "dev", Service: "hello", Version: "1", Manifest: manifest,
		RequestID: "req-1", RequestedAt: time.Now().UTC()}
	chosen := store.NewID(time.Now())
	if err := st.Put(ctx, nsRequests, req.RequestID, []byte(chosen)); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		rel, err := b.Deploy(ctx, req, "admin")
		if err != nil {
			t.Fatalf("retry %d: %v", i, err)
		}
		if rel.ID != chosen {
			t.Fatalf("retry %d made release %s, want %s (the id chosen before the crash)", i, rel.ID, chosen)
		}
	}
	list, err := st.ListReleases(ctx, store.ReleaseFilter{Service: "hello"})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 {
		t.Fatalf("%d releases recorded, want 1", len(list))
	}
}
