package config

import (
	"reflect"
	"testing"
	"time"
)

func TestOverridesDeepMerge(t *testing.T) {
	service := `service "web" {
  command = ["./bin/web", "--port", "{{PORT}}"]
  env     = { A = "1", B = "2" }
  hosts   = ["a.development.acme.test", "b.development.acme.test"]
  scale {
    min     = 2
    desired = 3
    max     = 10
  }
  deploy {
    strategy = "canary"
    canary {
      step {
        weight = 10
      }
      step {
        weight = 20
      }
      analysis {
        min_requests = 50
      }
    }
  }
  alarm "errors" {
    metric    = "error_rate"
    threshold = 0.05
    notify    = ["ops"]
  }
  environment "staging" {
    env   = { B = "two", C = "3" }
    hosts = ["s.staging.acme.test"]
    scale {
      desired = 4
    }
    deploy {
      canary {
        step {
          weight = 50
          pause  = "2m"
        }
        analysis {
          max_latency_p99_ratio = 2
        }
      }
    }
    alarm "errors" {
      threshold = 0.5
    }
    alarm "latency" {
      metric    = "latency_p99"
      threshold = 1
    }
  }
  environment "production" {
    image   = "r.example.com/web:1"
    command = []
    hosts   = []
  }
}
`
	ws, diags := LoadSources([]byte(testProject), map[string][]byte{"web.service.hcl": []byte(service)})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	base, _ := ws.Resolve("web", "development")
	st, _ := ws.Resolve("web", "staging")

	if got := st.Env; !reflect.DeepEqual(got, map[string]string{"A": "1", "B": "two", "C": "3"}) {
		t.Errorf("maps merge key by key: env = %v", got)
	}
	if got := st.Hosts; !reflect.DeepEqual(got, []string{"s.staging.acme.test"}) {
		t.Errorf("lists replace: hosts = %v", got)
	}
	if st.Scale.Desired != 4 || st.Scale.Min != 2 || st.Scale.Max != 10 {
		t.Errorf("blocks merge field by field: scale = %+v", st.Scale)
	}
	if len(st.Deploy.Canary.Steps) != 1 || st.Deploy.Canary.Steps[0].Weight != 50 || st.Deploy.Canary.Steps[0].Pause.Duration != 2*time.Minute {
		t.Errorf("repeated unlabelled blocks replace: steps = %+v", st.Deploy.Canary.Steps)
	}
	if a := st.Deploy.Canary.Analysis; a.MinRequests != 50 || a.MaxLatencyP99Ratio != 2 || a.MaxErrorRateIncrease != 0.01 {
		t.Errorf("nested blocks merge field by field: analysis = %+v", a)
	}
	if st.Deploy.Strategy != "canary" {
		t.Errorf("unset fields keep the base: strategy = %q", st.Deploy.Strategy)
	}
	if len(st.Alarms) != 2 || st.Alarms[0].Name != "errors" || st.Alarms[0].Threshold != 0.5 || st.Alarms[0].Metric != "error_rate" || !reflect.DeepEqual(st.Alarms[0].Notify, []string{"ops"}) || st.Alarms[1].Name != "latency" {
		t.Errorf("labelled blocks merge by label: alarms = %+v %+v", st.Alarms[0], st.Alarms[len(st.Alarms)-1])
	}
	// The base is untouched by resolving another environment.
	if base.Scale.Desired != 3 || len(base.Deploy.Canary.Steps) != 2 || base.Env["B"] != "2" || len(base.Alarms) != 1 || base.Alarms[0].Threshold != 0.05 {
		t.Errorf("base changed by merge: %+v", base)
	}
	prod, _ := ws.Resolve("web", "production")
	if prod.Image != "r.example.com/web:1" || len(prod.Command) != 0 {
		t.Errorf("production: image %q command %v", prod.Image, prod.Command)
	}
}

func TestDefaults(t *testing.T) {
	ws, diags := LoadSources([]byte(testProject), map[string][]byte{"web.service.hcl": []byte(svc(""))})
	if diags.HasErrors() {
		t.Fatal(render(diags))
	}
	s, _ := ws.Resolve("web", "development")
	checks := map[string][2]any{
		"port":                {s.Port, 8080},
		"health.kind":         {s.Health.Kind, "http"},
		"health.path":         {s.Health.Path, "/"},
		"health.interval":     {s.Health.Interval.Duration, 5 * time.Second},
		"scale.min":           {s.Scale.Min, 1},
		"scale.desired":       {s.Scale.Desired, 2},
		"scale.max":           {s.Scale.Max, 2},
		"deploy.strategy":     {s.Deploy.Strategy, "rolling"},
		"deploy.timeout":      {s.Deploy.Timeout.Duration, 10 * time.Minute},
		"rolling.max_surge":   {s.Deploy.Rolling.MaxSurge, 1},
		"hooks.stop_timeout":  {s.Hooks.StopTimeout.Duration, 30 * time.Second},
		"analysis.min":        {s.Deploy.Canary.Analysis.MinRequests, 100},
		"working_dir":         {s.WorkingDir, "."},
		"environment":         {s.Environment, "development"},
		"project":             {s.Project, "acme"},
		"autoscale (absent)":  {s.Autoscale == nil, true},
		"network.ip_space":    {ws.Project.Network.IPSpace, "10.0.0.0/8"},
		"network.tiers":       {len(ws.Project.Network.Tiers), 4},
		"environment.target":  {ws.Project.Environments[0].Target, "local"},
		"environment.protect": {ws.Project.Environments[2].Protected, true},
	}
	for name, c := range checks {
		if !reflect.DeepEqual(c[0], c[1]) {
			t.Errorf("%s = %v, want %v", name, c[0], c[1])
		}
	}
}

func TestDurationString(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", 90 * time.Second: "1m30s", time.Hour: "1h", 500 * time.Millisecond: "500ms", 10 * time.Minute: "10m", 0: "0s"} {
		if got := (Duration{d}).String(); got != want {
			t.Errorf("%v: got %q want %q", d, got, want)
		}
	}
}
