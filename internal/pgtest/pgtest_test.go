package pgtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// TestDatabaseStopStart: a database answers, stops answering while the
// server is stopped, and answers again (with its data) once restarted.
func TestDatabaseStopStart(t *testing.T) {
	ctx := context.Background()
	c := Shared(t)
	dsn := Database(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE x (v int); INSERT INTO x VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if err := c.StopServer(); err != nil {
		t.Fatal(err)
	}
	if _, err := pgx.Connect(ctx, dsn); err == nil {
		t.Fatal("connected to a stopped server")
	}
	if err := c.StartServer(); err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var v int
	if err := conn.QueryRow(ctx, `SELECT v FROM x`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("after restart: v=%d err=%v", v, err)
	}
}

// TestOrphanReaped: a cluster whose test process died is stopped and
// removed by the next Start.
func TestOrphanReaped(t *testing.T) {
	if _, err := BinDir(); err != nil {
		t.Skipf("PostgreSQL tests skipped: %v", err)
	}
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.Dir, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	c2, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := os.Stat(c.Dir); !os.IsNotExist(err) {
		c.Close()
		t.Fatalf("the orphaned cluster %s is still there: %v", c.Dir, err)
	}
	// (c2 may have been given c's port, once it was free.)
	if c2.Port != c.Port {
		if conn, err := pgx.Connect(context.Background(), c.URL("postgres")); err == nil {
			conn.Close(context.Background())
			t.Fatal("the orphaned cluster's server still answers")
		}
	}
}
