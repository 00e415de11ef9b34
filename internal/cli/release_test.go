package cli

import (
	"testing"

	"github.com/runwayhq/runway/internal/api"
)

func TestProgressLine(t *testing.T) {
	g := func(name, version string, healthy, desired int) api.Group {
		return api.Group{Name: name, Version: version, Healthy: healthy, Desired: desired}
	}
	tests := []struct {
		name string
		st   api.ServiceStatus
		want string
	}{
		{"nothing", api.ServiceStatus{}, "instances: none · traffic: none"},
		{"first release starting", api.ServiceStatus{Groups: []api.Group{g("a", "1", 0, 4)}},
			"instances: v1 0/4 healthy · traffic: none"},
		{"blue green switched", api.ServiceStatus{
			Groups: []api.Group{g("a", "1", 3, 3), g("b", "2", 4, 4)},
			Routes: []api.Route{{Group: "b", Weight: 100}, {Group: "a", Weight: 0}}},
			"instances: v1 3/3 healthy, v2 4/4 healthy · traffic: v2 100%"},
		{"canary step", api.ServiceStatus{
			Groups: []api.Group{g("a", "1", 6, 6), g("b", "2", 1, 1)},
			Routes: []api.Route{{Group: "a", Weight: 90}, {Group: "b", Weight: 10}}},
			"instances: v1 6/6 healthy, v2 1/1 healthy · traffic: v1 90%, v2 10%"},
		{"same version twice is told apart by group", api.ServiceStatus{
			Groups: []api.Group{g("hello-a", "1", 3, 3), g("hello-b", "1", 2, 4)},
			Routes: []api.Route{{Group: "hello-a", Weight: 1}, {Group: "hello-b", Weight: 1}}},
			"instances: v1 (hello-a) 3/3 healthy, v1 (hello-b) 2/4 healthy · traffic: v1 (hello-a) 50%, v1 (hello-b) 50%"},
		{"route to a group not listed", api.ServiceStatus{Routes: []api.Route{{Group: "gone", Weight: 100}}},
			"instances: none · traffic: gone 100%"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := progressLine(&tt.st); got != tt.want {
				t.Errorf("progressLine:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
