package cli

import (
	"testing"

	"github.com/runwayhq/runway/internal/apiwire"
)

func TestProgressLine(t *testing.T) {
	g := func(name, version string, healthy, desired int) apiwire.Group {
		return apiwire.Group{Name: name, Version: version, Healthy: healthy, Desired: desired}
	}
	tests := []struct {
		name string
		st   apiwire.ServiceStatus
		want string
	}{
		{"nothing", apiwire.ServiceStatus{}, "instances: none · traffic: none"},
		{"first release starting", apiwire.ServiceStatus{Groups: []apiwire.Group{g("a", "1", 0, 4)}},
			"instances: v1 0/4 healthy · traffic: none"},
		{"blue green switched", apiwire.ServiceStatus{
			Groups: []apiwire.Group{g("a", "1", 3, 3), g("b", "2", 4, 4)},
			Routes: []apiwire.Route{{Group: "b", Weight: 100}, {Group: "a", Weight: 0}}},
			"instances: v1 3/3 healthy, v2 4/4 healthy · traffic: v2 100%"},
		{"canary step", apiwire.ServiceStatus{
			Groups: []apiwire.Group{g("a", "1", 6, 6), g("b", "2", 1, 1)},
			Routes: []apiwire.Route{{Group: "a", Weight: 90}, {Group: "b", Weight: 10}}},
			"instances: v1 6/6 healthy, v2 1/1 healthy · traffic: v1 90%, v2 10%"},
		{"same version twice is told apart by group", apiwire.ServiceStatus{
			Groups: []apiwire.Group{g("hello-a", "1", 3, 3), g("hello-b", "1", 2, 4)},
			Routes: []apiwire.Route{{Group: "hello-a", Weight: 1}, {Group: "hello-b", Weight: 1}}},
			"instances: v1 (hello-a) 3/3 healthy, v1 (hello-b) 2/4 healthy · traffic: v1 (hello-a) 50%, v1 (hello-b) 50%"},
		{"route to a group not listed", apiwire.ServiceStatus{Routes: []apiwire.Route{{Group: "gone", Weight: 100}}},
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
