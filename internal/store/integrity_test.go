package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// copyFile copies src to dst (the files of an open database, as a crash or a
// careless restore would leave them).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func addRelease(t *testing.T, s *SQLite, svc string, events int) {
	t.Helper()
	ctx := context.Background()
	r := &Release{ID: NewID(time.Now()), Environment: "dev", Service: svc, Progress: Progress{State: "Validate"}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Error(err)
		return
	}
	var evs []*Event
	for i := 0; i < events; i++ {
		evs = append(evs, &Event{State: "Deploy", Step: i, Message: "step"})
	}
	if err := s.SaveProgress(ctx, r.ID, Progress{State: "Deploy"}, evs...); err != nil {
		t.Error(err)
	}
}

// TestDamagedDatabaseRefused: a 0-byte or missing database beside a WAL that
// holds frames, a file that is not a database, and a database whose pages
// are damaged are refused with ErrDamaged, and the files are left as they
// were.
func TestDamagedDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	live := filepath.Join(t.TempDir(), "runway.db")
	s, err := OpenSQLite(ctx, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 20; i++ {
		addRelease(t, s, fmt.Sprintf("svc%d", i), 5)
	}
	if st, err := os.Stat(live + "-wal"); err != nil || st.Size() == 0 {
		t.Fatalf("the open database has no WAL to test with: %v", err)
	}

	cases := map[string]func(dir string) string{
		"0-byte database beside a WAL": func(dir string) string {
			copyFile(t, live+"-wal", filepath.Join(dir, "runway.db-wal"))
			os.WriteFile(filepath.Join(dir, "runway.db"), nil, 0o600)
			return "empty (0 bytes), but runway.db-wal holds"
		},
		"missing database beside a WAL": func(dir string) string {
			copyFile(t, live+"-wal", filepath.Join(dir, "runway.db-wal"))
			return "missing, but runway.db-wal holds"
		},
		"not a database": func(dir string) string {
			os.WriteFile(filepath.Join(dir, "runway.db"), []byte(strings.Repeat("this is not sqlite\n", 400)), 0o600)
			return "not a database"
		},
		"damaged pages": func(dir string) string {
			// A checkpointed copy, then garbage over every page but the first.
			p := filepath.Join(dir, "runway.db")
			if _, err := Backup(ctx, live, p); err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(p)
			for i := 4096; i < len(b); i++ {
				b[i] = byte(i * 7)
			}
			os.WriteFile(p, b, 0o600)
			return ""
		},
	}
	for name, mk := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			want := mk(dir)
			before := snapshot(t, dir)
			_, err := OpenSQLite(ctx, filepath.Join(dir, "runway.db"), Options{})
			var de *DamagedError
			if !errors.Is(err, ErrDamaged) || !errors.As(err, &de) {
				t.Fatalf("open: %v, want ErrDamaged", err)
			}
			if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "runway.db") {
				t.Errorf("error %q does not say %q", err, want)
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("the files changed: %s, were %s", after, before)
			}
		})
	}
}

// snapshot lists the files of dir with their sizes.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		st, _ := e.Info()
		out = append(out, fmt.Sprintf("%s:%d", e.Name(), st.Size()))
	}
	return strings.Join(out, " ")
}

// TestBackupWhileWriting backs up a database while writers keep adding
// releases with 5 events each in one transaction: the copy passes
// quick_check, opens as a store, and holds whole transactions only.
func TestBackupWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	live := filepath.Join(dir, "runway.db")
	s, err := OpenSQLite(ctx, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 10; i++ {
		addRelease(t, s, "before", 5)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				addRelease(t, s, "during", 5)
			}
		}()
	}
	dest := filepath.Join(t.TempDir(), "backup.db")
	info, err := Backup(ctx, live, dest)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if info.Releases < 10 || info.Bytes == 0 {
		t.Errorf("backup info %+v, want at least the 10 releases made before", info)
	}
	if st, err := os.Stat(dest); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v, want mode 0600", st.Mode(), err)
	}
	cp, err := OpenSQLite(ctx, dest, Options{})
	if err != nil {
		t.Fatalf("the backup does not open: %v", err)
	}
	defer cp.Close()
	rels, err := cp.ListReleases(ctx, ReleaseFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != info.Releases {
		t.Errorf("backup holds %d releases, Backup said %d", len(rels), info.Releases)
	}
	for _, r := range rels {
		evs, err := cp.ListEvents(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A release is recorded with no event, then its progress with 5 in
		// one transaction: 0 or 5, never a part.
		if len(evs) != 0 && len(evs) != 5 {
			t.Errorf("release %s has %d events in the backup: a transaction was cut", r.ID, len(evs))
		}
	}
	if _, err := Backup(ctx, live, dest); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup to the same file: %v, want refused", err)
	}
	if _, err := Backup(ctx, filepath.Join(dir, "nope.db"), filepath.Join(dir, "b2.db")); err == nil || !strings.Contains(err.Error(), "no database") {
		t.Errorf("backup of a missing database: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "nope.db")); err == nil {
		t.Error("backing up a missing database created it")
	}
}

// TestAgentGenerations: records only go up, resync may set any value, and
// each saved step records the service's generation on its release.
func TestAgentGenerations(t *testing.T) { eachStore(t, testAgentGenerations) }

func testAgentGenerations(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, _ := k.newStore(t)
	if g, err := s.AgentGeneration(ctx, "dev", "web"); err != nil || g != 0 {
		t.Fatalf("unrecorded generation: %d %v", g, err)
	}
	r := &Release{ID: NewID(time.Now()), Environment: "dev", Service: "web", Progress: Progress{State: "Validate"}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	for _, g := range []int64{3, 7, 5} {
		if err := s.RecordAgentGeneration(ctx, "dev", "web", g); err != nil {
			t.Fatal(err)
		}
	}
	s.RecordAgentGeneration(ctx, "dev", "api", 2)
	if g, _ := s.AgentGeneration(ctx, "dev", "web"); g != 7 {
		t.Errorf("after 3, 7, 5: %d, want 7", g)
	}
	if err := s.SaveProgress(ctx, r.ID, Progress{State: "Deploy", Step: 1}); err != nil {
		t.Fatal(err)
	}
	got, _ := s.GetRelease(ctx, r.ID)
	if got.Generation != 7 {
		t.Errorf("release step recorded generation %d, want 7", got.Generation)
	}
	if err := s.ResetAgentGeneration(ctx, "dev", "web", 4); err != nil {
		t.Fatal(err)
	}
	all, err := s.AgentGenerations(ctx)
	if err != nil || len(all) != 2 || all[0] != (AgentGeneration{"dev", "api", 2}) || all[1] != (AgentGeneration{"dev", "web", 4}) {
		t.Errorf("generations %+v %v", all, err)
	}
}
