package secrets_test

import (
	"context"
	"os"
	"testing"

	"github.com/runwayhq/runway/internal/pgtest"
	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// TestSecretLifecycleOnPostgres: the secret store's rows on PostgreSQL
// behave as on SQLite (versions, overwrite, rollback, delete, numbering).
func TestSecretLifecycleOnPostgres(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.OpenPostgres(ctx, pgtest.Database(t), store.PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := secrets.LoadKeyring(dir, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := secrets.OpenVault(ctx, st, kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	testSecretLifecycle(t, &fixture{dir: dir, st: st, vault: v})
}
