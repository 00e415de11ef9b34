package store

import (
	"context"
	"database/sql"
	"errors"
	"io/fs"
	"testing"

	"github.com/pressly/goose/v3"
)

func TestProjects(t *testing.T) { eachStore(t, testProjects) }

func testProjects(t *testing.T, k storeKind) {
	s, _ := k.newStore(t)
	ctx := context.Background()
	if _, err := s.GetProject(ctx, "acme"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get of a project never applied: %v, want ErrNotFound", err)
	}
	p := &Project{Name: "acme", Source: []byte(`project "acme" {}`), Digest: "sha256:1", Version: 1, UpdatedBy: "admin"}
	if err := s.PutProject(ctx, p); err != nil {
		t.Fatal(err)
	}
	// A second first apply (a race) and a stale update both lose.
	if err := s.PutProject(ctx, &Project{Name: "acme", Source: []byte("x"), Version: 1}); !errors.Is(err, ErrConflict) {
		t.Fatalf("second version 1: %v, want ErrConflict", err)
	}
	if err := s.PutProject(ctx, &Project{Name: "acme", Source: []byte("v2"), Digest: "sha256:2", Version: 2, UpdatedBy: "ana"}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutProject(ctx, &Project{Name: "acme", Source: []byte("late"), Version: 2}); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale version 2: %v, want ErrConflict", err)
	}
	got, err := s.GetProject(ctx, "acme")
	if err != nil || string(got.Source) != "v2" || got.Version != 2 || got.UpdatedBy != "ana" {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := s.PutProject(ctx, &Project{Name: "blog", Source: []byte("b"), Version: 1}); err != nil {
		t.Fatal(err)
	}
	list, err := s.ListProjects(ctx)
	if err != nil || len(list) != 2 || list[0].Name != "acme" || list[1].Name != "blog" {
		t.Fatalf("list = %v, %v", list, err)
	}
}

// TestReleasesByProject: two projects' services of the same name and
// environment are different services.
func TestReleasesByProject(t *testing.T) { eachStore(t, testReleasesByProject) }

func testReleasesByProject(t *testing.T, k storeKind) {
	s, _ := k.newStore(t)
	ctx := context.Background()
	mk := func(project, state string) string {
		r := &Release{ID: NewID(s.now()), Project: project, Environment: "dev", Service: "web", Spec: []byte("{}"),
			Progress: Progress{State: state}}
		if err := s.CreateRelease(ctx, r); err != nil {
			t.Fatal(err)
		}
		return r.ID
	}
	a1 := mk("a", "Success")
	_ = mk("a", "FailureClean")
	b1 := mk("b", "Deploy")
	list, err := s.ListReleases(ctx, ReleaseFilter{Project: "a", Environment: "dev", Service: "web"})
	if err != nil || len(list) != 2 {
		t.Fatalf("project a has %d releases (%v), want 2", len(list), err)
	}
	for _, r := range list {
		if r.Project != "a" {
			t.Fatalf("release of project %q listed for a", r.Project)
		}
	}
	live, err := s.LiveReleases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range live {
		ids[r.Project] = r.ID
	}
	if len(live) != 2 || ids["a"] != a1 || ids["b"] != b1 {
		t.Fatalf("live releases %v, want a=%s (its FailureClean one skipped) and b=%s", ids, a1, b1)
	}
}

// TestMigrationFillsProjects: releases recorded before projects existed
// (a database at migration 1) take the project their manifest names when
// the store upgrades it.
func TestMigrationFillsProjects(t *testing.T) {
	ctx := context.Background()
	path := t.TempDir() + "/runway.db"
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	fsys, _ := fs.Sub(migrations, "migrations")
	p, err := goose.NewProvider(goose.DialectSQLite3, db, fsys)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO releases (id, environment, service, created_at, spec, state, updated_at)
		VALUES ('01JD3Q8Y7Z5W2X4V6T8R0P2N4A', 'dev', 'web', 1, '{"service":{"name":"web","project":"acme"}}', 'Success', 1),
		       ('01JD3Q8Y7Z5W2X4V6T8R0P2N4B', 'dev', 'old', 1, 'not json', 'Success', 1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	s := open(t, path, nil)
	for id, want := range map[string]string{"01JD3Q8Y7Z5W2X4V6T8R0P2N4A": "acme", "01JD3Q8Y7Z5W2X4V6T8R0P2N4B": ""} {
		got, err := s.GetRelease(ctx, id)
		if err != nil || got.Project != want {
			t.Fatalf("release %s: project %q (%v), want %q", id, got.Project, err, want)
		}
	}
}
