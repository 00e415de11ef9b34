package secrets_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
)

type fixture struct {
	dir   string
	db    string
	st    *store.SQLite
	vault *secrets.Vault
}

func open(t *testing.T, dir, envKey string) (*fixture, error) {
	t.Helper()
	ctx := context.Background()
	db := filepath.Join(dir, "runway.db")
	st, err := store.OpenSQLite(ctx, db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ids, err := st.SecretKeyIDs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := secrets.LoadKeyring(dir, envKey, ids)
	if err != nil {
		return nil, err
	}
	v, err := secrets.OpenVault(ctx, st, kr, nil)
	if err != nil {
		return nil, err
	}
	return &fixture{dir: dir, db: db, st: st, vault: v}, nil
}

func mustOpen(t *testing.T, dir string) *fixture {
	t.Helper()
	f, err := open(t, dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// raw opens the database file directly, as an attacker with the file would.
func raw(t *testing.T, f *fixture) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+f.db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

var web = secrets.Ref{Project: "hello", Environment: "staging", Service: "web", Key: "DATABASE_URL"}

func put(t *testing.T, v *secrets.Vault, ref secrets.Ref, val string, overwrite bool) secrets.Meta {
	t.Helper()
	ms, err := v.Put(context.Background(), map[secrets.Ref][]byte{ref: []byte(val)}, "ana", overwrite)
	if err != nil {
		t.Fatalf("put %s: %v", ref.Key, err)
	}
	return ms[0]
}

func value(t *testing.T, v *secrets.Vault, ref secrets.Ref, version int) string {
	t.Helper()
	b, _, err := v.Value(context.Background(), ref, version)
	if err != nil {
		t.Fatalf("value %s v%d: %v", ref.Key, version, err)
	}
	return string(b)
}

func TestSecretPutOverwriteHistoryRollbackDelete(t *testing.T) {
	t.Parallel()
	testSecretLifecycle(t, mustOpen(t, t.TempDir()))
}

// testSecretLifecycle puts, overwrites, rolls back, deletes and puts again
// a secret of f's vault.
func testSecretLifecycle(t *testing.T, f *fixture) {
	ctx := context.Background()
	if m := put(t, f.vault, web, "postgres://one", false); m.Version != 1 {
		t.Fatalf("first version %d", m.Version)
	}
	_, err := f.vault.Put(ctx, map[secrets.Ref][]byte{web: []byte("postgres://two")}, "ana", false)
	if !errors.Is(err, secrets.ErrExists) || !strings.Contains(err.Error(), "--overwrite") {
		t.Fatalf("put without overwrite over an existing key: %v", err)
	}
	// All or none: one refused key stores none of the others.
	other := web
	other.Key = "API_KEY"
	_, err = f.vault.Put(ctx, map[secrets.Ref][]byte{web: []byte("x"), other: []byte("y")}, "ana", false)
	if !errors.Is(err, secrets.ErrExists) {
		t.Fatalf("mixed put: %v", err)
	}
	if _, _, err := f.vault.Value(ctx, other, 0); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("a refused put stored another key: %v", err)
	}
	put(t, f.vault, web, "postgres://two", true)
	if got := value(t, f.vault, web, 0); got != "postgres://two" {
		t.Fatal("current value is not the overwritten one")
	}
	if got := value(t, f.vault, web, 1); got != "postgres://one" {
		t.Fatal("version 1 changed")
	}
	m, err := f.vault.Rollback(ctx, web, 1, "bob")
	if err != nil || m.Version != 3 || m.RollbackOf != 1 {
		t.Fatalf("rollback: %+v %v", m, err)
	}
	if got := value(t, f.vault, web, 0); got != "postgres://one" {
		t.Fatal("rollback did not restore version 1's value")
	}
	h, err := f.vault.History(ctx, web)
	if err != nil || len(h) != 3 || h[0].Version != 3 || h[2].Version != 1 || h[0].CreatedBy != "bob" {
		t.Fatalf("history: %+v %v", h, err)
	}
	list, err := f.vault.List(ctx, "hello", "staging", "web")
	if err != nil || len(list) != 1 || list[0].Version != 3 || list[0].AccessedAt.IsZero() {
		t.Fatalf("list: %+v %v", list, err)
	}
	if err := f.vault.Delete(ctx, web); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.vault.Value(ctx, web, 1); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("a deleted secret still opens: %v", err)
	}
	// Put again: numbering continues, so a pin of v2 never gets a new value.
	if m := put(t, f.vault, web, "postgres://four", false); m.Version != 4 {
		t.Fatalf("version after delete and put: %d", m.Version)
	}
}

func TestSecretResolveServiceFirst(t *testing.T) {
	t.Parallel()
	list := []secrets.Info{
		{Ref: secrets.Ref{Key: "A"}, Version: 2},
		{Ref: secrets.Ref{Key: "A", Service: "web"}, Version: 5},
		{Ref: secrets.Ref{Key: "B"}, Version: 1},
		{Ref: secrets.Ref{Key: "C", Service: "api"}, Version: 1},
	}
	pins, missing := secrets.Resolve("web", map[string]string{"A": "A", "DB": "B", "C": "C", "D": "D"}, list)
	want := []secrets.Pin{{Name: "A", Key: "A", Service: "web", Version: 5}, {Name: "DB", Key: "B", Version: 1}}
	if len(pins) != 2 || pins[0] != want[0] || pins[1] != want[1] {
		t.Fatalf("pins %+v", pins)
	}
	if strings.Join(missing, ",") != "C,D" {
		t.Fatalf("missing %v", missing)
	}
}

// TestSecretTamperedAndSwappedRowsRefused: a changed ciphertext, a changed
// wrapped key, and a row copied onto another secret all fail to open.
func TestSecretTamperedAndSwappedRowsRefused(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := mustOpen(t, t.TempDir())
	other := web
	other.Key = "API_KEY"
	put(t, f.vault, web, "value-of-db", false)
	put(t, f.vault, other, "value-of-api", false)
	db := raw(t, f)

	if _, err := db.Exec(`UPDATE secret_versions SET ciphertext = CAST(ciphertext AS BLOB) || x'00' WHERE key = 'API_KEY'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.vault.Value(ctx, other, 0); !errors.Is(err, secrets.ErrTampered) {
		t.Fatalf("tampered ciphertext: %v", err)
	}
	// Swap: DATABASE_URL's sealed row copied onto API_KEY.
	if _, err := db.Exec(`UPDATE secret_versions SET (key_id, wrapped_key, ciphertext) =
		(SELECT key_id, wrapped_key, ciphertext FROM secret_versions WHERE key = 'DATABASE_URL') WHERE key = 'API_KEY'`); err != nil {
		t.Fatal(err)
	}
	_, _, err := f.vault.Value(ctx, other, 0)
	if !errors.Is(err, secrets.ErrTampered) || strings.Contains(err.Error(), "value-of") {
		t.Fatalf("swapped row: %v", err)
	}
	// A flipped bit of the wrapped data key.
	if _, err := db.Exec(`UPDATE secret_versions SET wrapped_key = x'00' || substr(wrapped_key, 2) WHERE key = 'DATABASE_URL'`); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.vault.Value(ctx, web, 0); !errors.Is(err, secrets.ErrTampered) {
		t.Fatalf("tampered data key: %v", err)
	}
}

// TestSecretWrongOrMissingMasterKey: another key, or no key file, is a clear
// error that changes nothing (the key file is not replaced).
func TestSecretWrongOrMissingMasterKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := mustOpen(t, dir)
	put(t, f.vault, web, "hunter2-db", false)
	id := f.vault.KeyID()
	f.st.Close()

	other, err := secrets.NewMasterKey()
	if err != nil {
		t.Fatal(err)
	}
	_, err = open(t, dir, strings.TrimSpace(string(other.Encode())))
	if !errors.Is(err, secrets.ErrMasterKey) || !strings.Contains(err.Error(), id) || !strings.Contains(err.Error(), secrets.MasterKeyEnv) {
		t.Fatalf("wrong master key: %v", err)
	}
	keyFile := filepath.Join(dir, secrets.MasterKeyFile)
	saved, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, other.Encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, dir, ""); !errors.Is(err, secrets.ErrMasterKey) {
		t.Fatalf("wrong key file: %v", err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, err := open(t, dir, ""); !errors.Is(err, secrets.ErrMasterKey) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing key file: %v", err)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatal("a missing key file was replaced by a new key while secrets are stored")
	}
	if _, err := open(t, dir, "bm90IGEga2V5"); err == nil || strings.Contains(err.Error(), "bm90IGEga2V5") {
		t.Fatalf("a short key: %v", err)
	}
	if err := os.WriteFile(keyFile, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	g := mustOpen(t, dir)
	if value(t, g.vault, web, 0) != "hunter2-db" {
		t.Fatal("the restored key does not open the value")
	}
}

// TestSecretRotateMasterKey: every version stays readable, the old key no
// longer opens them, and the key file holds the new key.
func TestSecretRotateMasterKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	f := mustOpen(t, dir)
	envWide := secrets.Ref{Project: "hello", Environment: "staging", Key: "SHARED"}
	put(t, f.vault, web, "one", false)
	put(t, f.vault, web, "two", true)
	put(t, f.vault, envWide, "shared", false)
	oldFile, _ := os.ReadFile(filepath.Join(dir, secrets.MasterKeyFile))
	oldID, newID, n, err := f.vault.RotateMaster(ctx)
	if err != nil || n != 3 || oldID == newID || f.vault.KeyID() != newID {
		t.Fatalf("rotate: %s -> %s (%d) %v", oldID, newID, n, err)
	}
	if value(t, f.vault, web, 1) != "one" || value(t, f.vault, web, 2) != "two" || value(t, f.vault, envWide, 0) != "shared" {
		t.Fatal("a value changed across the rotation")
	}
	newFile, _ := os.ReadFile(filepath.Join(dir, secrets.MasterKeyFile))
	if bytes.Equal(oldFile, newFile) {
		t.Fatal("the key file still holds the old key")
	}
	if _, err := os.Stat(filepath.Join(dir, "master.key.next")); !os.IsNotExist(err) {
		t.Fatal("the staged key file was left behind")
	}
	f.st.Close()
	if _, err := open(t, dir, strings.TrimSpace(string(oldFile))); !errors.Is(err, secrets.ErrMasterKey) {
		t.Fatalf("the old key still opens the secrets: %v", err)
	}
	g := mustOpen(t, dir)
	if value(t, g.vault, web, 2) != "two" {
		t.Fatal("after a restart the value does not open")
	}
	// A key from the environment is not rotated by the server.
	h, err := open(t, t.TempDir(), strings.TrimSpace(string(newFile)))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := h.vault.RotateMaster(ctx); !errors.Is(err, secrets.ErrKeyFromEnvironment) {
		t.Fatalf("rotation of an environment key: %v", err)
	}
}

// TestSecretRotationCrashRecovered: a crash after the re-wrap committed but
// before the new key file was installed leaves both files; the next start
// keeps the key the rows use.
func TestSecretRotationCrashRecovered(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	f := mustOpen(t, dir)
	put(t, f.vault, web, "kept", false)
	oldFile, _ := os.ReadFile(filepath.Join(dir, secrets.MasterKeyFile))
	if _, _, _, err := f.vault.RotateMaster(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.st.Close()
	newFile, _ := os.ReadFile(filepath.Join(dir, secrets.MasterKeyFile))
	// As if the rename had not happened.
	if err := os.WriteFile(filepath.Join(dir, "master.key.next"), newFile, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, secrets.MasterKeyFile), oldFile, 0o600); err != nil {
		t.Fatal(err)
	}
	g := mustOpen(t, dir)
	if value(t, g.vault, web, 0) != "kept" {
		t.Fatal("value lost")
	}
	got, _ := os.ReadFile(filepath.Join(dir, secrets.MasterKeyFile))
	if !bytes.Equal(got, newFile) {
		t.Fatal("the next start did not finish the rotation")
	}
}

func TestSecretKeyFileMadeOnFirstStart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mustOpen(t, dir)
	st, err := os.Stat(filepath.Join(dir, secrets.MasterKeyFile))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}
}
