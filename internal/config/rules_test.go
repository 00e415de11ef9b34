package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/hcl/v2"
)

const testProject = `project "acme" {
  domain = "acme.test"
}
environment "development" { target = "local" }
environment "staging" { target = "local" }
environment "production" {
  target    = "aws"
  region    = "us-east-2"
  protected = true
}
network { ip_space = "10.0.0.0/8" }
notify "ops" { webhook = "https://hooks.example.com/T000/B000" }
`

// svc wraps service body lines into a manifest whose production override
// supplies an image, so the aws target is satisfied unless a case changes it.
func svc(body string) string {
	return "service \"web\" {\n  command = [\"./bin/web\"]\n" + body + "\n  environment \"production\" {\n    image = \"r.example.com/web:1\"\n    command = []\n  }\n}\n"
}

func load(t *testing.T, project, service string) (*Workspace, hcl.Diagnostics) {
	t.Helper()
	ws, diags := LoadSources([]byte(project), map[string][]byte{"web.service.hcl": []byte(service)})
	return ws, withoutPlanned(diags)
}

// withoutPlanned drops the warnings about blocks nothing acts on yet (the
// test project's notify channel has one); TestPlannedBlocksWarned checks them.
func withoutPlanned(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Summary != "Not acted on yet" {
			out = append(out, d)
		}
	}
	return out
}

// TestPlannedBlocksWarned: blocks accepted but not acted on yet
// (autoscale, schedule) are warned where they are written.
func TestPlannedBlocksWarned(t *testing.T) {
	service := svc("  scale {\n    max = 4\n  }\n  autoscale {\n    metric = \"cpu\"\n    target = 60\n  }\n  schedule \"day\" {\n    cron = \"0 8 * * *\"\n    desired = 3\n  }\n  alarm \"errors\" {\n    metric = \"error_rate\"\n    threshold = 0.1\n    notify = [\"ops\"]\n  }")
	_, diags := LoadSources([]byte(testProject), map[string][]byte{"web.service.hcl": []byte(service)})
	var got []string
	for _, d := range diags {
		if d.Severity != hcl.DiagWarning || d.Summary != "Not acted on yet" {
			t.Fatalf("unexpected diagnostic:\n%s", render(hcl.Diagnostics{d}))
		}
		got = append(got, fmt.Sprintf("%s:%d:%d %s", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column, d.Detail))
	}
	want := []string{
		"web.service.hcl:6:3 autoscale is accepted and checked, but Runway does not autoscale yet: the instance count stays scale.desired.",
		"web.service.hcl:10:3 schedule \"day\" is accepted and checked, but Runway does not run schedules yet: the instance count stays scale.desired.",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRules checks every validation rule: each case must produce exactly
// one error, with the given summary, at the given line:col of the manifest.
func TestRules(t *testing.T) {
	cases := []struct {
		name    string
		service string
		summary string
		at      string // line:col in web.service.hcl
		detail  string // substring of the detail
	}{
		{"unknown attribute", svc("  prot = 8080"), `Unsupported argument "prot"`, "3:3", `Did you mean "port"?`},
		{"unknown block", svc("  helth {\n  }"), `Unsupported block type "helth"`, "3:3", `Did you mean "health"?`},
		{"attribute written as block", svc("  env {\n  }"), "env is an argument, not a block", "3:3", "env = value"},
		{"block written as attribute", svc("  scale = {}"), "scale is a block, not an argument", "3:3", "scale { ... }"},
		{"wrong type", svc(`  port = "http"`), `Wrong type for "port"`, "3:10", "whole number"},
		{"fraction for int", svc("  port = 80.5"), "port must be a whole number", "3:10", "80.5"},
		{"port range", svc("  port = 70000"), "Port out of range", "3:10", "between 1 and 65535"},
		{"port zero", svc("  port = 0"), "Port out of range", "3:10", ""},
		{"bad duration", svc("  health {\n    interval = \"5 seconds\"\n  }"), "Invalid interval", "4:16", "use a number with a unit"},
		{"negative duration", svc("  hooks {\n    stop_timeout = \"-1s\"\n  }"), "Invalid stop_timeout", "4:20", "negative"},
		{"spread too big", svc("  scale {\n    spread = 1\n  }"), "spread out of range", "4:14", "below 1"},
		{"spread negative", svc("  scale {\n    spread = -0.1\n  }"), "spread out of range", "4:14", ""},
		{"min above desired", svc("  scale {\n    min = 5\n    desired = 3\n    max = 6\n  }"), "min is above desired", "4:11", "min = 5"},
		{"desired above max", svc("  scale {\n    desired = 7\n    max = 6\n  }"), "desired is above max", "4:15", "max = 6"},
		{"strategy enum", svc("  deploy {\n    strategy = \"bluegreen\"\n  }"), "Invalid strategy", "4:16", `Did you mean "blue_green"?`},
		{"canary without steps", svc("  deploy {\n    strategy = \"canary\"\n  }"), "Canary needs steps", "3:3", "step {"},
		{"canary weight range", svc("  deploy {\n    strategy = \"canary\"\n    canary {\n      step {\n        weight = 100\n      }\n    }\n  }"), "Canary weight out of range", "7:18", "1 and 99"},
		{"canary weights increase", svc("  deploy {\n    strategy = \"canary\"\n    canary {\n      step {\n        weight = 50\n      }\n      step {\n        weight = 20\n      }\n    }\n  }"), "Canary weights must increase", "10:18", "weight 50"},
		{"secret name", svc(`  secrets = ["database_url"]`), "Invalid secret name", "3:14", "upper-case letters, digits and underscores"},
		{"secret also env", svc("  secrets = [\"TOKEN\"]\n  env = { TOKEN = \"x\" }"), "Variable is also a secret", "4:11", "Remove it from env"},
		{"env key", svc(`  env = { "1BAD" = "x" }`), "Invalid environment variable name", "3:11", ""},
		{"reserved env", svc(`  env = { RUNWAY_X = "x" }`), "Reserved variable name", "3:11", ""},
		{"unknown template in command", "service \"web\" {\n  command = [\"./bin/web\", \"{{PROT}}\"]\n  environment \"production\" {\n    image = \"i\"\n    command = []\n  }\n}\n", "Unknown template value", "2:27", "Did you mean {{PORT}}?"},
		{"unknown template in env", svc(`  env = { A = "{{NOPE}}" }`), "Unknown template value", "3:11", "Allowed:"},
		{"unknown template in hook", svc("  hooks {\n    pre_deploy = [\"x\", \"{{VERSON}}\"]\n  }"), "Unknown template value", "4:24", "{{VERSION}}"},
		{"alarm notify", svc("  alarm \"e\" {\n    metric = \"error_rate\"\n    threshold = 1\n    notify = [\"opps\"]\n  }"), "Unknown notify channel", "6:15", `Did you mean "ops"?`},
		{"alarm missing metric", svc("  alarm \"e\" {\n    threshold = 1\n  }"), `Missing required argument "metric"`, "3:3", "metric = "},
		{"alarm comparison", svc("  alarm \"e\" {\n    metric = \"error_rate\"\n    threshold = 1\n    comparison = \"=>\"\n  }"), "Invalid comparison", "6:18", ""},
		{"missing command for local", "service \"web\" {\n  environment \"production\" {\n    image = \"i\"\n  }\n}\n", "Missing command", "1:1", "Target local"},
		{"missing image for aws", "service \"web\" {\n  command = [\"./web\"]\n}\n", "Missing image", "1:1", "target aws"},
		{"image on local", "service \"web\" {\n  command = [\"./web\"]\n  image = \"x\"\n}\n", "image is not used by target local", "3:11", ""},
		{"override of unknown env", svc("  environment \"prod\" {\n  }"), `Unknown environment "prod"`, "3:15", `Did you mean "production"?`},
		{"recreate in protected", svc("  deploy {\n    strategy = \"recreate\"\n  }"), "recreate is refused in a protected environment", "4:16", "protected"},
		{"rolling without progress", svc("  deploy {\n    rolling {\n      max_surge = 0\n    }\n  }"), "Rolling cannot make progress", "4:5", "max_surge = 1"},
		{"health timeout", svc("  health {\n    interval = \"1s\"\n    timeout = \"2s\"\n  }"), "Health timeout longer than interval", "5:15", ""},
		{"health path", svc("  health {\n    path = \"healthz\"\n  }"), "Invalid health path", "4:12", `start with "/"`},
		{"exec without command", svc("  health {\n    kind = \"exec\"\n  }"), "Missing health command", "3:3", ""},
		{"threshold", svc("  health {\n    healthy_threshold = 0\n  }"), "Value out of range", "4:25", "at least 1"},
		{"cron", svc("  scale {\n    max = 4\n  }\n  schedule \"day\" {\n    cron = \"0 25 * * *\"\n    desired = 2\n  }"), "Invalid cron expression", "7:12", "five fields"},
		{"schedule outside scale", svc("  schedule \"day\" {\n    cron = \"0 8 * * *\"\n    desired = 9\n  }"), "Scheduled count outside scale", "5:15", ""},
		{"timezone", svc("  schedule \"day\" {\n    cron = \"0 8 * * *\"\n    desired = 2\n    timezone = \"Mars/Base\"\n  }"), "Unknown time zone", "6:16", ""},
		{"autoscale nothing", svc("  scale {\n    min = 2\n    max = 2\n  }\n  autoscale {\n    metric = \"cpu\"\n    target = 60\n  }"), "Nothing to autoscale", "7:3", ""},
		{"autoscale metric", svc("  scale {\n    max = 4\n  }\n  autoscale {\n    metric = \"cpus\"\n    target = 60\n  }"), "Invalid metric", "7:14", `Did you mean "cpu"?`},
		{"host", svc(`  hosts = ["https://www.acme.test"]`), "Invalid host name", "3:12", ""},
		{"duplicate block", svc("  health {\n  }\n  health {\n  }"), "Duplicate health block", "5:3", "already defined"},
		{"duplicate alarm", svc("  alarm \"e\" {\n    metric = \"cpu\"\n    threshold = 1\n  }\n  alarm \"e\" {\n    metric = \"cpu\"\n    threshold = 1\n  }"), `Duplicate alarm "e" block`, "7:3", ""},
		{"label on unlabelled", svc("  health \"x\" {\n  }"), "Unexpected label on health block", "3:10", ""},
		{"variables not allowed", svc("  port = var.port"), "Variables not allowed", "3:10", "literal values"},
		{"nested environment", svc("  environment \"staging\" {\n    environment \"development\" {\n    }\n  }"), `Unsupported block type "environment"`, "4:5", "cannot be nested"},
		{"analysis ratio", svc("  deploy {\n    canary {\n      analysis {\n        max_latency_p99_ratio = 0.5\n      }\n    }\n  }"), "Value out of range", "6:33", "at least 1"},
		{"service name", "service \"Web\" {\n  command = [\"./web\"]\n  environment \"production\" {\n    image = \"i\"\n    command = []\n  }\n}\n", "Invalid service name", "1:9", "lower-case"},
		{"version", svc(`  version = "1.0 beta"`), "Invalid version", "3:13", ""},
		{"working dir", svc(`  working_dir = "/srv"`), "working_dir must be relative", "3:17", ""},
		{"reserved PORT", svc(`  env = { PORT = "9000" }`), "Reserved variable name", "3:11", "read the port from PORT"},
		{"shell in version", svc(`  version = "1.1;id>x;#"`), "Invalid version", "3:13", "letters, digits"},
		{"host of another environment", svc("  environment \"development\" {\n    hosts = [\"web.production.localhost\"]\n  }"), "Host outside the environment", "4:14", "hosts_allowed"},
		{"wildcard host", svc("  environment \"development\" {\n    hosts = [\"*.development.acme.test\"]\n  }"), "Wildcard hosts are not supported", "4:14", "wildcard host names are not supported; list each host name"},
		{"canary pauses exceed timeout", svc("  deploy {\n    strategy = \"canary\"\n    timeout = \"1m\"\n    canary {\n      step {\n        weight = 10\n        pause = \"40s\"\n      }\n      step {\n        weight = 20\n        pause = \"30s\"\n      }\n    }\n  }"), "Canary pauses exceed the timeout", "5:15", "Raise the timeout above 1m10s"},
		{"reserved secret name", svc(`  secrets = ["PORT"]`), "Reserved variable name", "3:14", "secret_env"},
		{"secret_env variable", svc(`  secret_env = { RUNWAY_DB = "DATABASE_URL" }`), "Reserved variable name", "3:18", "another variable name"},
		{"secret_env key", svc(`  secret_env = { DB = "db-url" }`), "Invalid secret name", "3:18", "DATABASE_URL"},
		{"secrets map and secret_env", svc("  secrets = { DB = \"DATABASE_URL\" }\n  secret_env = { X = \"Y\" }"), "secret_env given twice", "3:13", "write the map in one of them"},
		{"secret in env too", svc("  secrets = [\"DB\"]\n  env = { DB = \"x\" }"), "Variable is also a secret", "4:11", "Remove it from env"},
		{"template in shell script", svc("  hooks {\n    pre_deploy = [\"sh\", \"-c\", \"./migrate {{VERSION}}\"]\n  }"), "Template value inside a shell script", "4:31", "$RUNWAY_VERSION"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, all := load(t, testProject, tc.service)
			// Warnings of other rules (a secret the local target cannot
			// hold yet) may accompany the case's diagnostic.
			var diags hcl.Diagnostics
			for _, d := range all {
				if d.Severity == hcl.DiagError || strings.Contains(d.Summary, tc.summary) {
					diags = append(diags, d)
				}
			}
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic %q, got %d:\n%s", tc.summary, len(diags), render(all))
			}
			d := diags[0]
			if !strings.Contains(d.Summary, tc.summary) {
				t.Errorf("summary = %q, want %q", d.Summary, tc.summary)
			}
			if d.Subject == nil {
				t.Fatalf("diagnostic has no location: %s", render(diags))
			}
			if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.at || d.Subject.Filename != "web.service.hcl" {
				t.Errorf("at %s:%s, want web.service.hcl:%s\n%s", d.Subject.Filename, got, tc.at, render(diags))
			}
			if !strings.Contains(d.Detail, tc.detail) {
				t.Errorf("detail = %q, want it to contain %q", d.Detail, tc.detail)
			}
		})
	}
}

func TestProjectRules(t *testing.T) {
	cases := []struct {
		name, project, summary, at string
	}{
		{"missing project", `environment "development" {}`, "Missing project block", "1:1"},
		{"no environment", `project "a" {}`, "No environment declared", "1:1"},
		{"project name", "project \"Acme\" {}\nenvironment \"dev\" {}", "Invalid project name", "1:9"},
		{"domain", "project \"a\" {\n  domain = \"https://a.com\"\n}\nenvironment \"dev\" {}", "Invalid domain", "2:12"},
		{"target", "project \"a\" {}\nenvironment \"dev\" {\n  target = \"k8s\"\n}", "Invalid target", "3:12"},
		{"aws needs region", "project \"a\" {}\nenvironment \"prod\" {\n  target = \"aws\"\n}", "Missing region", "2:1"},
		{"region", "project \"a\" {}\nenvironment \"prod\" {\n  region = \"ohio\"\n}", "Invalid region", "3:12"},
		{"zone", "project \"a\" {}\nenvironment \"prod\" {\n  zones = [\"a\", \"zz\"]\n}", "Invalid zone", "3:17"},
		{"ip space", "project \"a\" {}\nenvironment \"dev\" {}\nnetwork {\n  ip_space = \"10.0.0.0/33\"\n}", "Invalid ip_space", "4:14"},
		{"host bits", "project \"a\" {}\nenvironment \"dev\" {}\nnetwork {\n  ip_space = \"10.1.0.0/8\"\n}", "ip_space is not a network address", "4:14"},
		{"reserved", "project \"a\" {}\nenvironment \"dev\" {}\nnetwork {\n  reserved = [\"10.0.0.1\"]\n}", "Invalid reserved range", "4:15"},
		{"prefixes", "project \"a\" {}\nenvironment \"dev\" {}\nnetwork {\n  zone_prefix = 16\n}", "Inconsistent prefix lengths", "3:1"},
		{"tiers fit", "project \"a\" {}\nenvironment \"dev\" {}\nnetwork {\n  subnet_prefix = 19\n}", "Subnet tiers do not fit", "3:1"},
		{"webhook", "project \"a\" {}\nenvironment \"dev\" {}\nnotify \"ops\" {\n  webhook = \"hooks\"\n}", "Invalid webhook URL", "4:13"},
		{"webhook without TLS", "project \"a\" {}\nenvironment \"dev\" {}\nnotify \"ops\" {\n  webhook = \"http://hooks.example.com/x\"\n}", "Webhook without TLS", "4:13"},
		{"hosts_allowed", "project \"a\" {}\nenvironment \"dev\" {\n  hosts_allowed = [\"http://x\"]\n}", "Invalid allowed host", "3:20"},
		{"webhook required", "project \"a\" {}\nenvironment \"dev\" {}\nnotify \"ops\" {}", `Missing required argument "webhook"`, "3:1"},
		{"duplicate environment", "project \"a\" {}\nenvironment \"dev\" {}\nenvironment \"dev\" {}", `Duplicate environment "dev" block`, "3:1"},
		{"syntax", "project \"a\" {\n", "Unclosed configuration block", "1:13"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, diags := ParseProjectSource([]byte(tc.project), "runway.hcl")
			diags = withoutPlanned(diags)
			if len(diags) != 1 {
				t.Fatalf("want 1 diagnostic %q, got %d:\n%s", tc.summary, len(diags), render(diags))
			}
			d := diags[0]
			if !strings.Contains(d.Summary, tc.summary) {
				t.Errorf("summary = %q, want %q", d.Summary, tc.summary)
			}
			if got := fmt.Sprintf("%d:%d", d.Subject.Start.Line, d.Subject.Start.Column); got != tc.at {
				t.Errorf("at %s, want %s\n%s", got, tc.at, render(diags))
			}
		})
	}
}

// TestDefaultsKeepNaturalManifestsValid: setting only a short health
// interval makes the default timeout follow it instead of failing.
func TestDefaultsKeepNaturalManifestsValid(t *testing.T) {
	ws, diags := load(t, testProject, svc("  health {\n    interval = \"1s\"\n  }"))
	if len(diags) != 0 {
		t.Fatalf("want no diagnostics, got:\n%s", render(diags))
	}
	s, _ := ws.Resolve("web", "development")
	if s.Health.Timeout.Duration != time.Second {
		t.Fatalf("health.timeout = %s, want 1s (the interval)", s.Health.Timeout)
	}
	ws, _ = load(t, testProject, svc(""))
	if s, _ := ws.Resolve("web", "development"); s.Health.Timeout.Duration != 2*time.Second {
		t.Fatalf("default health.timeout = %s, want 2s", s.Health.Timeout)
	}
}

// TestTargetLimits: a canary pause outside the statistics windows the
// target can measure is refused at the pause, naming the target's limits.
func TestTargetLimits(t *testing.T) {
	opts := Options{Targets: map[string]TargetLimits{"local": {StatsWindowMin: time.Second, StatsWindowMax: 5 * time.Minute}}}
	service := svc("  deploy {\n    strategy = \"canary\"\n    timeout = \"1h\"\n    canary {\n      step {\n        weight = 10\n        pause = \"10m\"\n      }\n    }\n  }")
	_, diags := LoadSourcesWith(opts, []byte(testProject), map[string][]byte{"web.service.hcl": []byte(service)})
	diags = withoutPlanned(diags)
	if len(diags) != 1 || diags[0].Summary != "Pause outside what the target can measure" || diags[0].Subject.Start.Line != 9 {
		t.Fatalf("want one error at the pause (line 9), got:\n%s", render(diags))
	}
	if !strings.Contains(diags[0].Detail, "from 1s to 5m") {
		t.Errorf("detail does not name the limits: %s", diags[0].Detail)
	}
	if _, diags := LoadSources([]byte(testProject), map[string][]byte{"web.service.hcl": []byte(service)}); len(withoutPlanned(diags)) != 0 {
		t.Fatalf("without limits nothing is refused, got:\n%s", render(diags))
	}
}

// TestHostUsedTwice: two services of a project may not serve one host,
// including the preview host of a blue_green service.
func TestHostUsedTwice(t *testing.T) {
	a := "service \"pv\" {\n  command = [\"./pv\"]\n  deploy {\n    strategy = \"blue_green\"\n    blue_green {\n      preview = true\n    }\n  }\n  environment \"production\" {\n    image = \"i\"\n    command = []\n  }\n}\n"
	b := "service \"pv-preview\" {\n  command = [\"./pvp\"]\n  environment \"production\" {\n    image = \"i\"\n    command = []\n  }\n}\n"
	_, diags := LoadSources([]byte(testProject), map[string][]byte{"a.service.hcl": []byte(a), "b.service.hcl": []byte(b)})
	diags = withoutPlanned(diags)
	if len(diags) == 0 || diags[0].Summary != "Host used twice" || !strings.Contains(diags[0].Detail, "pv-preview.development.acme.test") {
		t.Fatalf("want Host used twice for pv-preview.development.acme.test, got:\n%s", render(diags))
	}
}

// TestAllErrorsCollected checks that problems in several places are all reported.
func TestAllErrorsCollected(t *testing.T) {
	_, diags := load(t, testProject, svc("  prot = 1\n  port = 0\n  scale {\n    spread = 2\n  }"))
	var got []string
	for _, d := range diags {
		got = append(got, d.Summary)
	}
	want := []string{`Unsupported argument "prot"`, "Port out of range", "spread out of range"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func render(diags hcl.Diagnostics) string {
	var b strings.Builder
	_ = WriteDiagnostics(&b, nil, diags, false)
	return b.String()
}

// TestSecretsListOrMap: secrets takes a list (variables named as their
// keys) or a map VARIABLE = "KEY", which is secret_env.
func TestSecretsListOrMap(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`  secrets = ["DATABASE_URL"]`, "map[DATABASE_URL:DATABASE_URL]"},
		{`  secrets = { DB_URL = "DATABASE_URL" }`, "map[DB_URL:DATABASE_URL]"},
		{"  secrets = [\"A\"]\n  secret_env = { B = \"C\" }", "map[A:A B:C]"},
	} {
		ws, diags := load(t, testProject, svc(tc.body))
		if diags.HasErrors() {
			t.Fatalf("%s: %v", tc.body, diags)
		}
		s, diags := ws.Resolve("web", "production")
		if diags.HasErrors() {
			t.Fatalf("%s: %v", tc.body, diags)
		}
		if got := fmt.Sprint(s.SecretVars()); got != tc.want {
			t.Errorf("%s: secret variables %s, want %s", tc.body, got, tc.want)
		}
	}
}
