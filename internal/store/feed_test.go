package store

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestFeed: release events and service events merge in the order they
// were appended; filters by scope, release and after; Last keeps the newest.
func TestFeed(t *testing.T) { eachStore(t, testFeed) }

func testFeed(t *testing.T, k storeKind) {
	ctx := context.Background()
	s, c := k.newStore(t)
	r := &Release{ID: NewID(c.Now()), Project: "hello", Environment: "staging", Service: "web", CreatedBy: "ana",
		Spec: []byte("{}"), Progress: Progress{State: "Validate"}}
	if err := s.CreateRelease(ctx, r); err != nil {
		t.Fatal(err)
	}
	add := func(kind, msg string) {
		t.Helper()
		c.Advance(time.Millisecond)
		var err error
		switch kind {
		case "release":
			err = s.AppendEvent(ctx, &Event{ReleaseID: r.ID, State: "Deploy", Step: 1, Message: msg})
		case "project.applied":
			err = s.AppendServiceEvent(ctx, &ServiceEvent{Kind: kind, Project: "hello", Actor: "ana", Message: msg})
		default:
			err = s.AppendServiceEvent(ctx, &ServiceEvent{Kind: kind, Project: "hello", Environment: "staging", Service: "web", ReleaseID: r.ID, Actor: "local", Message: msg})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	add("project.applied", "a")
	add("release", "b")
	add("instance.started", "c")
	add("release", "d")
	msgs := func(f FeedFilter) string {
		t.Helper()
		list, err := s.Feed(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range list {
			out = append(out, e.Message)
		}
		return strings.Join(out, "")
	}
	for _, tc := range []struct {
		f    FeedFilter
		want string
	}{
		{FeedFilter{}, "abcd"},
		{FeedFilter{Project: "hello", Environment: "staging"}, "abcd"}, // a project's applies show in its environments
		{FeedFilter{Project: "hello", Environment: "staging", Service: "web"}, "bcd"},
		{FeedFilter{Release: r.ID}, "bcd"},
		{FeedFilter{Environment: "production"}, "a"},
		{FeedFilter{Project: "other"}, ""},
		{FeedFilter{Last: 2}, "cd"},
	} {
		if got := msgs(tc.f); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.f, got, tc.want)
		}
	}
	all, _ := s.Feed(ctx, FeedFilter{})
	if got := msgs(FeedFilter{After: all[1].ID}); got != "cd" {
		t.Errorf("after the second: %q", got)
	}
	if all[1].Kind != "release" || all[1].Actor != "ana" || all[1].State != "Deploy" || all[2].Step != -1 {
		t.Errorf("fields: %+v %+v", all[1], all[2])
	}
}
