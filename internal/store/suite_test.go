package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/pgtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Cleanup()
	os.Exit(code)
}

// storeKind is one database the store suite runs on: SQLite in a file,
// or a database of its own on the test binary's PostgreSQL (pgtest).
type storeKind struct {
	name string
	// location makes a new, empty database and returns where it is.
	location func(t *testing.T) string
	// open opens (migrating) the store at location with clock c (nil:
	// time.Now); two opens of one location are two servers sharing it.
	open func(t *testing.T, location string, c *clock) *SQLite
}

var storeKinds = []storeKind{
	{
		name:     "sqlite",
		location: func(t *testing.T) string { return filepath.Join(t.TempDir(), "sub", "runway.db") },
		open:     open,
	},
	{
		name:     "postgres",
		location: func(t *testing.T) string { return pgtest.Database(t) },
		open: func(t *testing.T, dsn string, c *clock) *SQLite {
			t.Helper()
			opts := PostgresOptions{}
			if c != nil {
				opts.Now = c.Now
			}
			s, err := OpenPostgres(context.Background(), dsn, opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	},
}

// newStore opens a new store of this kind with a settable clock.
func (k storeKind) newStore(t *testing.T) (*SQLite, *clock) {
	c := &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)}
	return k.open(t, k.location(t), c), c
}

// eachStore runs a test of the store suite on every kind of store.
func eachStore(t *testing.T, test func(t *testing.T, k storeKind)) {
	for _, k := range storeKinds {
		t.Run(k.name, func(t *testing.T) { test(t, k) })
	}
}

func pgtestShared(t *testing.T) *pgtest.Cluster { return pgtest.Shared(t) }
