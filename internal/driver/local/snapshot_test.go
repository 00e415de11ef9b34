package local

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// TestGroupsSnapshot: in a WithGroupsSnapshot context, ListGroups,
// Instances and Routes of every service answer what they answer without
// one (from one listing each), and a group or route made after the
// snapshot is not in it, while a context without one sees it at once.
func TestGroupsSnapshot(t *testing.T) {
	lt := startLocal(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refs := []target.ServiceRef{{Project: "p", Environment: "dev", Service: "a"}, {Project: "p", Environment: "dev", Service: "b"}}
	for i, ref := range refs {
		name := strategy.GroupName(ref.Service, snapRelease(i), lt.d.Capabilities().GroupNameMax)
		if err := lt.d.EnsureGroup(ctx, target.GroupSpec{Ref: ref, Group: name, Release: snapRelease(i), Spec: lt.spec(ref), Count: 1}); err != nil {
			t.Fatal(err)
		}
		if err := lt.d.SetRoutes(ctx, ref, []strategy.Route{{Group: name, Weight: 100}}); err != nil {
			t.Fatal(err)
		}
	}
	// A group's status changes while its instance starts; compare listings
	// only once every group is healthy, so both answer the same state.
	for _, ref := range refs {
		for {
			gs, err := lt.d.ListGroups(ctx, ref)
			if err == nil && len(gs) == 1 && gs[0].Status.Healthy == 1 {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("group of %s never healthy: %+v, %v", ref, gs, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	snap := WithGroupsSnapshot(ctx)
	for _, ref := range refs {
		want, err := lt.d.ListGroups(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := lt.d.ListGroups(snap, ref)
		if err != nil || len(want) != 1 || !reflect.DeepEqual(got, want) {
			t.Fatalf("ListGroups %s: %+v, %v with a snapshot, %+v without", ref, got, err, want)
		}
		wr, _ := lt.d.Routes(ctx, ref)
		gr, err := lt.d.Routes(snap, ref)
		if err != nil || len(wr) != 1 || !reflect.DeepEqual(gr, wr) {
			t.Fatalf("Routes %s: %+v, %v with a snapshot, %+v without", ref, gr, err, wr)
		}
		wi, _ := lt.d.Instances(ctx, ref, want[0].Name)
		gi, err := lt.d.Instances(snap, ref, want[0].Name)
		if err != nil || len(wi) != 1 || gi[0].ID != wi[0].ID {
			t.Fatalf("Instances %s: %+v, %v with a snapshot, %+v without", ref, gi, err, wi)
		}
		if ins, err := lt.d.Instances(snap, ref, "no-such-group"); err != nil || ins != nil {
			t.Errorf("Instances of a missing group with a snapshot: %+v, %v (want none, no error)", ins, err)
		}
	}
	late := target.ServiceRef{Project: "p", Environment: "dev", Service: "c"}
	name := strategy.GroupName(late.Service, snapRelease(9), lt.d.Capabilities().GroupNameMax)
	if err := lt.d.EnsureGroup(ctx, target.GroupSpec{Ref: late, Group: name, Release: snapRelease(9), Spec: lt.spec(late), Count: 0}); err != nil {
		t.Fatal(err)
	}
	if got, _ := lt.d.ListGroups(snap, late); len(got) != 0 {
		t.Errorf("a group made after the snapshot is in it: %+v", got)
	}
	if got, _ := lt.d.ListGroups(ctx, late); len(got) != 1 {
		t.Errorf("without a snapshot, the new group is missing: %+v", got)
	}
	if r, err := lt.d.Routes(snap, late); err != nil || r != nil {
		t.Errorf("Routes of a service without a route, with a snapshot: %+v, %v", r, err)
	}
}

func snapRelease(n int) string { return fmt.Sprintf("01JSNAPSH0T000000000000%03d", n) }
