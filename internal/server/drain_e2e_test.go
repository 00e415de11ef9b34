package server_test

import (
	"strings"
	"testing"
	"time"
)

// The first release of a service whose route switch hits a host conflict
// (another service already claims its host name) rolls back at once: there
// is no route to remove, so clean-up deletes the new group and the release
// ends FailureClean, instead of retrying "remove routes" until its deadline
// and ending FailureDirty with the group left running.
func TestFirstReleaseHostConflictEndsClean(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	c.writeManifest(manifest{Service: "other", Desired: 1, Hosts: []string{host(service)}})
	mustState(t, c.deploy("other", "1"), "Success")

	c.writeManifest(manifest{Desired: 1})
	rel := c.wait(c.submit(service, "1").ID, 45*time.Second)
	mustState(t, rel, "FailureClean")
	if !strings.Contains(rel.Error, "already routes to") {
		t.Errorf("release error %q does not name the host conflict", rel.Error)
	}
	removes := 0
	for _, e := range rel.Events {
		if strings.Contains(e.Message, "remove routes") {
			removes++
		}
	}
	if removes > 2 {
		t.Errorf("%d \"remove routes\" events, want the step once (a no-op)", removes)
	}
	if gs := c.groups(service); len(gs) != 0 {
		t.Errorf("groups of %s left after FailureClean: %d", service, len(gs))
	}
	// The other service keeps the host.
	if got := c.versions(service, 10); got["1"] != 10 {
		t.Errorf("%s answers %v, want the other service (v1) on every request", host(service), got)
	}
}
