package server_test

import (
	"testing"
	"time"
)

// TestStrategies releases v1 then v2 with each strategy under steady load:
// no request fails (recreate excepted: it has downtime by design), only v2
// answers afterwards, the release record counted the traffic, and the old
// group's processes are gone.
func TestStrategies(t *testing.T) {
	for _, strategy := range []string{"recreate", "rolling", "blue_green", "canary"} {
		t.Run(strategy, func(t *testing.T) {
			t.Parallel()
			c := startCluster(t)
			m := manifest{Strategy: strategy}
			if strategy == "canary" {
				m.Canary = `
      step {
        weight = 20
        pause  = "1s"
      }
      step {
        weight = 60
        pause  = "1s"
      }
      analysis {
        max_error_rate_increase = 0.05
        min_requests            = 20
      }`
			}
			c.writeManifest(m)
			mustState(t, c.deploy(service, "1"), "Success")
			c.onlyVersion(service, "1")
			oldGroup, oldPids := c.servingGroup(service)
			if len(oldPids) != 2 {
				t.Fatalf("v1 group %s has pids %v, want 2", oldGroup, oldPids)
			}

			stop := c.load(service)
			start := time.Now()
			rel := c.deploy(service, "2")
			res := stop()
			t.Logf("%s v1→v2 took %s", strategy, time.Since(start).Round(time.Millisecond))
			mustState(t, rel, "Success")
			if strategy != "recreate" {
				noFailures(t, strategy+" v1→v2", res)
				if rel.Failed != 0 || rel.Served == 0 {
					t.Errorf("release record: served %d, failed %d; want served > 0, failed 0", rel.Served, rel.Failed)
				}
			} else if rel.Served == 0 {
				t.Errorf("release record: served %d, want > 0", rel.Served)
			}
			c.onlyVersion(service, "2")
			c.gone(service, oldGroup, oldPids)
			c.servingGroup(service)
		})
	}
}
