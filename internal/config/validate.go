package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"
	_ "time/tzdata"

	"github.com/hashicorp/hcl/v2"
	"github.com/robfig/cron/v3"

	"github.com/runwayhq/runway/internal/naming"
	"github.com/runwayhq/runway/internal/runenv"
	"github.com/runwayhq/runway/internal/secrets"
)

var (
	nameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	// secretRe is the key of a secret, as the secret store takes it.
	secretRe  = secrets.KeyRe
	envKeyRe  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	regionRe  = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	zoneRe    = regexp.MustCompile(`^[a-z]$`)
	hostRe    = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	versionRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$`)
	// allowedRe is a hosts_allowed entry: a host name, or *. and a domain.
	allowedRe = regexp.MustCompile(`^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// VersionRule says what a release version may be; CheckVersion enforces it
// for the manifest, `runway deploy --version` and the server's API alike.
const VersionRule = "a version starts with a letter or digit and holds at most 128 letters, digits, '.', '_', '+' or '-', such as \"1.4.2\", \"2.0.0-rc.1+build.7\" or a commit hash"

// CheckVersion reports whether v is a valid release version.
func CheckVersion(v string) error {
	if !versionRe.MatchString(v) {
		return fmt.Errorf("version %q is not valid: %s", trunc(v, 64), VersionRule)
	}
	return nil
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// ReservedEnv reports whether a variable is set by Runway for every
// instance or task, so a manifest may not set it: PORT, the preview
// variables of verify tasks and everything starting with RUNWAY_.
func ReservedEnv(name string) bool {
	switch name {
	case "PORT", "PREVIEW_URL", "PREVIEW_HOST", "PREVIEW_ADDR":
		return true
	}
	return strings.HasPrefix(name, "RUNWAY_")
}

// TemplateValues are the placeholders allowed in command, env values and
// hooks (runenv.Keys, which expands them).
var TemplateValues = runenv.Keys

// checker collects diagnostics that point at field paths.
type checker struct {
	src   sources
	diags hcl.Diagnostics
	// fields are the paths of diags, in order, for errors without sources
	// (CheckPolicy).
	fields []string
}

func (c *checker) errf(path, summary, detail string, args ...any) {
	c.add(hcl.DiagError, path, summary, fmt.Sprintf(detail, args...))
}

func (c *checker) warnf(path, summary, detail string, args ...any) {
	c.add(hcl.DiagWarning, path, summary, fmt.Sprintf(detail, args...))
}

func (c *checker) add(sev hcl.DiagnosticSeverity, path, summary, detail string) {
	r := c.src.at(path)
	c.diags = append(c.diags, &hcl.Diagnostic{Severity: sev, Summary: summary, Detail: detail, Subject: &r})
	c.fields = append(c.fields, path)
}

// CheckPolicy applies validate's rules for a release's scale and deploy
// policy to resolved values, where no source locates them: the planner
// checks a release made from an older one (a rollback) with it. The error
// names every field at fault; warnings are not reported.
func CheckPolicy(sc Scale, d Deploy, envName string, protected bool) error {
	c := &checker{src: sources{}}
	checkPolicy(c, sc, d, envName, protected, "", TargetLimits{})
	var msgs []string
	for i, dg := range c.diags {
		if dg.Severity == hcl.DiagError {
			msgs = append(msgs, fmt.Sprintf("%s: %s: %s", c.fields[i], dg.Summary, dg.Detail))
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "; "))
}

func validateProject(p *Project, src sources) hcl.Diagnostics {
	c := &checker{src: src}
	if !nameRe.MatchString(p.Name) {
		c.errf("project.@label", "Invalid project name", "Project name %q must start with a lower-case letter and hold only lower-case letters, digits and dashes (at most 63), such as \"acme\".", p.Name)
	}
	if p.Domain != "" && (!hostRe.MatchString(p.Domain) || !strings.Contains(p.Domain, ".")) {
		c.errf("project.domain", "Invalid domain", "domain %q is not a DNS domain; write one such as \"acme.com\" (lower case, no scheme or path).", p.Domain)
	}
	for _, e := range p.Environments {
		base := "environment." + e.Name
		if !nameRe.MatchString(e.Name) {
			c.errf(base+".@label", "Invalid environment name", "Environment name %q must start with a lower-case letter and hold only lower-case letters, digits and dashes, such as \"staging\".", e.Name)
		}
		if e.Target == "aws" && e.Region == "" {
			c.errf(base, "Missing region", "Environment %q targets aws and needs a region, such as region = \"us-east-2\".", e.Name)
		}
		if e.Region != "" && !regionRe.MatchString(e.Region) {
			c.errf(base+".region", "Invalid region", "region %q does not look like a cloud region; write one such as \"us-east-2\" or \"eu-west-1\".", e.Region)
		}
		for i, h := range e.HostsAllowed {
			if !allowedRe.MatchString(h) {
				c.errf(fmt.Sprintf("%s.hosts_allowed[%d]", base, i), "Invalid allowed host", "%q is neither a host name such as \"www.acme.com\" nor a domain pattern such as \"*.acme.com\" (lower case, no scheme, port or path).", h)
			}
		}
		checkDockerEnvironment(c, e, base)
		checkKubernetesEnvironment(c, e, base)
		for i, z := range e.Zones {
			if !zoneRe.MatchString(z) {
				c.errf(fmt.Sprintf("%s.zones[%d]", base, i), "Invalid zone", "Zone %q must be a single letter suffix such as \"a\" (the zone becomes <region><letter>, e.g. us-east-2a).", z)
			}
		}
	}
	checkEnums(c, reflect.ValueOf(p.Environments), "environment")
	checkNetwork(c, &p.Network)
	warnPlanned(c, reflect.ValueOf(projectFile{Notify: p.Notify}))
	for _, n := range p.Notify {
		u, err := url.Parse(n.Webhook)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			c.errf("notify."+n.Name+".webhook", "Invalid webhook URL", "webhook %q must be an http(s) URL such as \"https://hooks.example.com/T000/B000\".", n.Webhook)
		} else if u.Scheme == "http" && !isLoopback(u.Hostname()) {
			c.warnf("notify."+n.Name+".webhook", "Webhook without TLS", "webhook %q is plain http: notifications (service names, errors) cross the network unencrypted and can be forged. Use an https URL.", n.Webhook)
		}
		if n.Secret != "" && !secretRe.MatchString(n.Secret) {
			c.errf("notify."+n.Name+".secret", "Invalid secret name", "secret %q must be a secret's name in upper case, digits and _, such as \"OPS_WEBHOOK_KEY\" (the name of the signing key, never the key itself).", n.Secret)
		}
	}
	return c.diags
}

func checkNetwork(c *checker, n *Network) {
	space, err := netip.ParsePrefix(n.IPSpace)
	if err != nil || !space.Addr().Is4() {
		c.errf("network.ip_space", "Invalid ip_space", "ip_space %q must be an IPv4 CIDR range such as \"10.0.0.0/8\".", n.IPSpace)
	} else if space.Masked() != space {
		c.errf("network.ip_space", "ip_space is not a network address", "ip_space %q has host bits set; write %q.", n.IPSpace, space.Masked().String())
	}
	for i, r := range n.Reserved {
		if p, err := netip.ParsePrefix(r); err != nil || !p.Addr().Is4() || p.Masked() != p {
			c.errf(fmt.Sprintf("network.reserved[%d]", i), "Invalid reserved range", "reserved range %q must be an IPv4 CIDR network such as \"10.200.0.0/16\".", r)
		}
	}
	if err == nil && !(space.Bits() <= n.RegionPrefix && n.RegionPrefix < n.ZonePrefix && n.ZonePrefix < n.SubnetPrefix && n.SubnetPrefix <= 28) {
		c.errf("network", "Inconsistent prefix lengths", "Need ip_space /%d ≤ region_prefix (%d) < zone_prefix (%d) < subnet_prefix (%d) ≤ 28.", space.Bits(), n.RegionPrefix, n.ZonePrefix, n.SubnetPrefix)
	} else if err == nil {
		if n.Zones < 1 || 1<<(n.ZonePrefix-n.RegionPrefix) < n.Zones+1 {
			c.errf("network.zones", "Too many zones", "zones = %d does not fit: a /%d holds %d /%d blocks and one is kept spare. Lower zones or zone_prefix.", n.Zones, n.RegionPrefix, 1<<(n.ZonePrefix-n.RegionPrefix), n.ZonePrefix)
		}
		if len(n.Tiers) == 0 || 1<<(n.SubnetPrefix-n.ZonePrefix) < len(n.Tiers) {
			c.errf("network.tiers", "Subnet tiers do not fit", "%d tiers of /%d do not fit in a /%d zone block (room for %d). Remove tiers or raise subnet_prefix.", len(n.Tiers), n.SubnetPrefix, n.ZonePrefix, 1<<(n.SubnetPrefix-n.ZonePrefix))
		}
	}
	for i, t := range n.Tiers {
		if !nameRe.MatchString(t) {
			c.errf(fmt.Sprintf("network.tiers[%d]", i), "Invalid tier name", "Tier %q must be lower-case letters, digits and dashes.", t)
		} else if slices.Index(n.Tiers, t) != i {
			c.errf(fmt.Sprintf("network.tiers[%d]", i), "Duplicate tier", "Tier %q is listed twice.", t)
		}
	}
}

func validateService(s *Service, p *Project, env *Environment, limits TargetLimits, src sources) hcl.Diagnostics {
	c := &checker{src: src}
	if !nameRe.MatchString(s.Name) {
		c.errf("@label", "Invalid service name", "Service name %q must start with a lower-case letter and hold only lower-case letters, digits and dashes (at most 63), such as \"web\"; it becomes part of host names.", s.Name)
	}
	checkEnums(c, reflect.ValueOf(s).Elem(), "")
	warnPlanned(c, reflect.ValueOf(s).Elem())

	// What to run depends on the environment's target.
	process := env.Target == "local"
	built := env.Target == "docker" && s.Build != nil
	switch {
	case process && len(s.Command) == 0:
		c.errf("", "Missing command", "Target local runs processes, so service %q needs a command in every environment with that target, such as command = [\"./bin/%s\", \"--port\", \"{{PORT}}\"].", s.Name, s.Name)
	case process && s.Image != "":
		c.errf("image", "image is not used by target local", "Target local runs processes: give a command and remove image, or move image into the environment overrides of container targets.")
	case env.Target == "docker" && s.Image == "" && !built:
		c.errf("", "Missing image", "Environment %q runs containers (target docker), so service %q needs an image, such as image = \"%s:{{VERSION}}\", or a build block, such as build { context = \".\" }.", env.Name, s.Name, s.Name)
	case !process && s.Image == "" && !built:
		c.errf("", "Missing image", "Environment %q runs containers (target %s), so service %q needs an image, such as image = \"registry.example.com/%s:1.0.0\"; set it in an environment %q override if other environments run a command.", env.Name, env.Target, s.Name, s.Name, env.Name)
	case !process && len(s.Command) > 0 && s.Image == "":
		c.errf("command", "command needs an image", "target %s runs containers; a command only overrides the image's entrypoint.", env.Target)
	}
	checkContainerService(c, s, env)
	if s.Version != "" && CheckVersion(s.Version) != nil {
		c.errf("version", "Invalid version", "version %q is not valid: %s.", trunc(s.Version, 64), VersionRule)
	}
	if s.Port < 1 || s.Port > 65535 {
		c.errf("port", "Port out of range", "port = %d must be between 1 and 65535.", s.Port)
	}
	if filepath.IsAbs(s.WorkingDir) {
		c.errf("working_dir", "working_dir must be relative", "working_dir %q is absolute; give it relative to the manifest's directory so the project works on every machine.", s.WorkingDir)
	}
	for _, k := range sortedKeys(s.Env) {
		if !envKeyRe.MatchString(k) {
			c.errf("env."+k, "Invalid environment variable name", "%q is not a valid variable name: use letters, digits and underscores, not starting with a digit.", k)
		}
		if _, ok := s.SecretVars()[k]; ok {
			c.errf("env."+k, "Variable is also a secret", "%s is listed in secrets (or secret_env) and set in env; a secret must not also have a plain value. Remove it from env.", k)
		}
		if ReservedEnv(k) {
			c.errf("env."+k, "Reserved variable name", "%s is set by Runway for every instance (PORT, PREVIEW_URL, PREVIEW_HOST, PREVIEW_ADDR and RUNWAY_*); rename the variable, and read the port from PORT or {{PORT}}.", k)
		}
		checkTemplates(c, "env."+k, s.Env[k])
	}
	for i, sec := range s.Secrets {
		p := fmt.Sprintf("secrets[%d]", i)
		if !secretRe.MatchString(sec) {
			c.errf(p, "Invalid secret name", "Secret name %q must be upper-case letters, digits and underscores starting with a letter, at most 128 characters, such as \"DATABASE_URL\".", sec)
		} else if slices.Index(s.Secrets, sec) != i {
			c.errf(p, "Duplicate secret", "Secret %q is listed twice.", sec)
		} else if ReservedEnv(sec) {
			c.errf(p, "Reserved variable name", "%s is set by Runway for every instance (PORT, PREVIEW_URL, PREVIEW_HOST, PREVIEW_ADDR and RUNWAY_*); name the secret otherwise, or give it another variable with secret_env.", sec)
		}
	}
	for _, v := range sortedKeys(s.SecretEnv) {
		p, key := "secret_env."+v, s.SecretEnv[v]
		switch {
		case !envKeyRe.MatchString(v):
			c.errf(p, "Invalid environment variable name", "%q is not a valid variable name: use letters, digits and underscores, not starting with a digit.", v)
		case ReservedEnv(v):
			c.errf(p, "Reserved variable name", "%s is set by Runway for every instance (PORT, PREVIEW_URL, PREVIEW_HOST, PREVIEW_ADDR and RUNWAY_*); choose another variable name.", v)
		case slices.Contains(s.Secrets, v):
			c.errf(p, "Variable is also a secret", "%s is listed in secrets, which already gives it secret %s; remove one of the two.", v, v)
		case !secretRe.MatchString(key):
			c.errf(p, "Invalid secret name", "Secret name %q must be upper-case letters, digits and underscores starting with a letter, at most 128 characters, such as \"DATABASE_URL\".", key)
		}
	}
	for i, h := range s.Hosts {
		path := fmt.Sprintf("hosts[%d]", i)
		if err := naming.CheckHost(h); err != nil {
			summary := "Invalid host name"
			if strings.Contains(h, "*") {
				summary = "Wildcard hosts are not supported"
			}
			c.errf(path, summary, "Host %s.", err)
			continue
		}
		switch {
		case !hostAllowed(h, env, p.Domain):
			zones := quoteAll(envZones(env.Name, p.Domain))
			c.errf(path, "Host outside the environment", "Service %q in environment %q may serve names under %s; %q is outside them. Choose a name such as %q, or add it to hosts_allowed of environment %q in runway.hcl.",
				s.Name, env.Name, strings.Join(zones, " and "), h, s.Name+"-www."+naming.Environment(env.Name, p.Domain), env.Name)
		case slices.Index(s.Hosts, h) != i:
			c.errf(path, "Duplicate host", "Host %q is listed twice.", h)
		}
	}
	checkCommand(c, "command", s.Command)
	checkCommand(c, "hooks.pre_deploy", s.Hooks.PreDeploy)

	checkCommand(c, "health.command", s.Health.Command)
	checkCommand(c, "deploy.blue_green.verify", s.Deploy.BlueGreen.Verify)

	// Health.
	h := s.Health
	switch h.Kind {
	case "http":
		if !strings.HasPrefix(h.Path, "/") {
			c.errf("health.path", "Invalid health path", "path %q must start with \"/\", such as \"/healthz\".", h.Path)
		}
	case "exec":
		if len(h.Command) == 0 {
			c.errf("health", "Missing health command", "kind = \"exec\" needs command, such as command = [\"./bin/check\"].")
		}
	}
	positive(c, "health.interval", h.Interval)
	positive(c, "health.timeout", h.Timeout)
	if h.Timeout.Duration > h.Interval.Duration {
		c.errf("health.timeout", "Health timeout longer than interval", "timeout (%s) must be at most interval (%s): a check must end before the next one starts.", h.Timeout, h.Interval)
	}
	atLeast(c, "health.healthy_threshold", h.HealthyThreshold, 1)
	atLeast(c, "health.unhealthy_threshold", h.UnhealthyThreshold, 1)

	// Resources.
	if s.Resources.CPU < 0 {
		c.errf("resources.cpu", "cpu must not be negative", "cpu = %g: give cores per instance such as 0.5, or 0 for no limit.", s.Resources.CPU)
	}
	if s.Resources.MemoryMB < 0 {
		c.errf("resources.memory_mb", "memory_mb must not be negative", "memory_mb = %d: give MiB per instance such as 256, or 0 for no limit.", s.Resources.MemoryMB)
	}

	checkPolicy(c, s.Scale, s.Deploy, env.Name, env.Protected, env.KubernetesTarget(), limits)
	sc := s.Scale
	if a := s.Autoscale; a != nil {
		if a.Target <= 0 {
			c.errf("autoscale.target", "autoscale target must be positive", "target = %g: give the value to keep %s near, such as 60.", a.Target, a.Metric)
		}
		if sc.Min == sc.Max {
			c.errf("autoscale", "Nothing to autoscale", "scale.min and scale.max are both %d, so autoscaling cannot change anything. Raise scale.max or remove autoscale.", sc.Min)
		}
	}
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	for _, sch := range s.Schedules {
		p := "schedule." + sch.Name
		if _, err := parser.Parse(sch.Cron); err != nil {
			c.errf(p+".cron", "Invalid cron expression", "cron %q: %v. Use five fields: minute hour day-of-month month day-of-week, such as \"0 8 * * MON-FRI\".", sch.Cron, err)
		}
		if sch.Desired < sc.Min || sch.Desired > sc.Max {
			c.errf(p+".desired", "Scheduled count outside scale", "desired = %d must be within scale.min (%d) and scale.max (%d).", sch.Desired, sc.Min, sc.Max)
		}
		if _, err := loadLocation(sch.Timezone); err != nil {
			c.errf(p+".timezone", "Unknown time zone", "timezone %q is not an IANA time zone name such as \"UTC\" or \"Europe/Paris\".", sch.Timezone)
		}
	}

	// Alarms.
	var channels []string
	for _, n := range p.Notify {
		channels = append(channels, n.Name)
	}
	for _, a := range s.Alarms {
		for i, n := range a.Notify {
			if !slices.Contains(channels, n) {
				detail := fmt.Sprintf("Alarm %q notifies %q, which runway.hcl does not declare", a.Name, n)
				if len(channels) > 0 {
					detail += " (declared: " + strings.Join(quoteAll(channels), ", ") + ")"
				}
				detail += "."
				if sg := suggest(n, channels); sg != "" {
					detail += fmt.Sprintf(" Did you mean %q?", sg)
				} else {
					detail += fmt.Sprintf(" Add notify %q { webhook = \"https://...\" } to runway.hcl.", n)
				}
				c.errf(fmt.Sprintf("alarm.%s.notify[%d]", a.Name, i), "Unknown notify channel", "%s", detail)
			}
		}
	}
	return c.diags
}

// checkPolicy applies the rules of a release's scale and deploy policy: the
// one copy, for validate (located) and for the planner (CheckPolicy).
func checkPolicy(c *checker, sc Scale, d Deploy, envName string, protected bool, targetKind string, limits TargetLimits) {
	atLeast(c, "scale.min", sc.Min, 0)
	atLeast(c, "scale.max_terms", sc.MaxTerms, 0)
	if sc.Min > sc.Desired {
		c.errf("scale.min", "min is above desired", "scale needs min ≤ desired ≤ max; here min = %d and desired = %d. Lower min or raise desired.", sc.Min, sc.Desired)
	}
	if sc.Desired > sc.Max {
		c.errf("scale.desired", "desired is above max", "scale needs min ≤ desired ≤ max; here desired = %d and max = %d. Lower desired or raise max.", sc.Desired, sc.Max)
	}
	if sc.Desired < 0 {
		c.errf("scale.desired", "desired must not be negative", "desired = %d; give 0 or more instances.", sc.Desired)
	}
	if sc.Spread < 0 || sc.Spread >= 1 {
		c.errf("scale.spread", "spread out of range", "spread = %g must be at least 0 and below 1 (0.2 starts 20%% extra instances and accepts 20%% fewer healthy).", sc.Spread)
	}
	positive(c, "deploy.timeout", d.Timeout)
	if d.Strategy == "recreate" && protected {
		c.errf("deploy.strategy", "recreate is refused in a protected environment", "Environment %q is protected and recreate stops every instance before starting new ones (downtime). Use rolling, blue_green or canary for it, e.g. in an environment %q override.", envName, envName)
	}
	atLeast(c, "deploy.rolling.max_surge", d.Rolling.MaxSurge, 0)
	atLeast(c, "deploy.rolling.max_unavailable", d.Rolling.MaxUnavailable, 0)
	if d.Strategy == "rolling" && d.Rolling.MaxSurge == 0 && d.Rolling.MaxUnavailable == 0 {
		c.errf("deploy.rolling", "Rolling cannot make progress", "max_surge and max_unavailable are both 0, so no instance can be replaced. Set max_surge = 1 (no capacity loss) or max_unavailable = 1.")
	}
	if d.Strategy == "canary" && len(d.Canary.Steps) == 0 {
		c.errf("deploy.canary", "Canary needs steps", "strategy = \"canary\" needs at least one step inside deploy { canary { ... } }, such as step { weight = 10 pause = \"1m\" }.")
	}
	prev := 0
	for i, st := range d.Canary.Steps {
		p := fmt.Sprintf("deploy.canary.step[%d].weight", i)
		switch {
		case st == nil:
			c.errf(p, "Empty canary step", "step %d has no weight; give each step a weight between 1 and 99.", i+1)
			continue
		case st.Weight <= 0 || st.Weight >= 100:
			c.errf(p, "Canary weight out of range", "weight = %d must be between 1 and 99 (the last step is followed by promotion to 100).", st.Weight)
		case st.Weight <= prev:
			c.errf(p, "Canary weights must increase", "weight = %d follows a step with weight %d; each step must send more traffic than the one before.", st.Weight, prev)
		}
		prev = max(prev, st.Weight)
	}
	if d.Strategy == "canary" {
		var paused time.Duration
		for i, st := range d.Canary.Steps {
			if st == nil {
				continue
			}
			p := fmt.Sprintf("deploy.canary.step[%d].pause", i)
			paused += st.Pause.Duration
			switch {
			case st.Pause.Duration < 0:
				c.errf(p, "Negative pause", "pause = %q must not be negative.", st.Pause)
			case limits.StatsWindowMax > 0 && (st.Pause.Duration < limits.StatsWindowMin || st.Pause.Duration > limits.StatsWindowMax):
				c.errf(p, "Pause outside what the target can measure", "The canary is judged on the proxy's statistics over its pause, and target %s measures windows from %s to %s; pause = %q is outside that. Use a pause within it, and more steps for a longer canary.",
					targetKind, Duration{limits.StatsWindowMin}, Duration{limits.StatsWindowMax}, st.Pause)
			}
		}
		if t := d.Timeout.Duration; t > 0 && paused >= t && len(d.Canary.Steps) > 0 {
			c.errf("deploy.timeout", "Canary pauses exceed the timeout", "The canary steps pause %s in all, and deploy.timeout = %q leaves no time to start and judge the canary: the release would always time out. Raise the timeout above %s or shorten the pauses.", Duration{paused}, d.Timeout, Duration{paused})
		}
	}
	an := d.Canary.Analysis
	if an.MaxErrorRateIncrease < 0 || an.MaxErrorRateIncrease > 1 {
		c.errf("deploy.canary.analysis.max_error_rate_increase", "Value out of range", "max_error_rate_increase = %g must be between 0 and 1 (0.01 allows one more failed request in a hundred).", an.MaxErrorRateIncrease)
	}
	if an.MaxLatencyP99Ratio < 1 {
		c.errf("deploy.canary.analysis.max_latency_p99_ratio", "Value out of range", "max_latency_p99_ratio = %g must be at least 1 (1.5 allows a canary p99 50%% above the stable one).", an.MaxLatencyP99Ratio)
	}
	atLeast(c, "deploy.canary.analysis.min_requests", an.MinRequests, 0)
	if limits.NoStats && d.Strategy == "canary" {
		hint := ""
		if targetKind == "kubernetes/service" {
			hint = `, or traffic = "runway" in its kubernetes block (Runway's proxy in the cluster measures each group)`
		}
		c.errf("deploy.strategy", "Canary analysis needs statistics the target does not measure", "A canary is judged on each group's request statistics, and target %s does not measure them. Use blue_green or rolling for environment %q%s.", targetKind, envName, hint)
	}
	if limits.ReplicaRatio {
		checkReplicaRatio(c, sc, d, targetKind)
	}
}

func positive(c *checker, path string, d Duration) {
	if d.Duration <= 0 {
		c.errf(path, "Duration must be positive", "%s must be longer than 0, such as \"30s\".", path[strings.LastIndex(path, ".")+1:])
	}
}

func atLeast(c *checker, path string, v, lo int) {
	if v < lo {
		c.errf(path, "Value out of range", "%s = %d must be at least %d.", path[strings.LastIndex(path, ".")+1:], v, lo)
	}
}

func checkCommand(c *checker, path string, argv []string) {
	for i, a := range argv {
		checkTemplates(c, fmt.Sprintf("%s[%d]", path, i), a)
	}
	checkShellTemplates(c, path, argv)
	if len(argv) > 0 && argv[0] == "" {
		c.errf(path+"[0]", "Empty program", "The first element of %s is the program to run and cannot be empty.", path)
	}
}

// checkTemplates reports {{NAME}} placeholders Runway does not know.
func checkTemplates(c *checker, path, s string) {
	for _, p := range runenv.Placeholders(s) {
		if p.Known() {
			continue
		}
		detail := fmt.Sprintf("%s is not a template value. Allowed: {{%s}}.", p.Text, strings.Join(TemplateValues, "}}, {{"))
		if sg := suggest(p.Name, TemplateValues); sg != "" {
			detail += fmt.Sprintf(" Did you mean {{%s}}?", sg)
		}
		c.errf(path, "Unknown template value", "%s", detail)
	}
}

// checkEnums checks every string field with an enum tag, recursively.
func checkEnums(c *checker, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkEnums(c, v.Elem(), path)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Pointer {
			return
		}
		for i := 0; i < v.Len(); i++ {
			e := v.Index(i).Elem()
			p := fmt.Sprintf("%s[%d]", path, i)
			for _, f := range fieldsOf(e.Type()) {
				if f.Kind == kindLabel {
					p = path + "." + e.Field(f.Index).String()
				}
			}
			checkEnums(c, e, p)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(Duration{}) {
			return
		}
		for _, f := range fieldsOf(v.Type()) {
			fv := v.Field(f.Index)
			p := join(path, f.Name)
			switch {
			case f.Kind == kindAttr && len(f.Enum) > 0:
				if s := fv.String(); !slices.Contains(f.Enum, s) {
					detail := fmt.Sprintf("%s = %q is not one of %s.", f.Name, s, strings.Join(quoteAll(f.Enum), ", "))
					if sg := suggest(s, f.Enum); sg != "" {
						detail += fmt.Sprintf(" Did you mean %q?", sg)
					}
					c.errf(p, "Invalid "+f.Name, "%s", detail)
				}
			case f.Kind != kindAttr && f.Kind != kindLabel:
				checkEnums(c, fv, p)
			}
		}
	}
}

// loadLocation resolves an IANA time zone name (the database is embedded
// with time/tzdata so minimal machines work too).
func loadLocation(name string) (*time.Location, error) { return time.LoadLocation(name) }

// shells are programs whose -c argument is a script.
var shells = []string{"sh", "bash", "dash", "zsh", "ksh", "ash", "busybox"}

// checkShellTemplates warns about template values interpolated into a
// shell script (sh -c "... {{VERSION}}"): the value becomes shell code. Runway
// restricts what the values may hold, but the safe way is the environment
// (RUNWAY_VERSION, PORT, ...), which the shell never parses as code.
func checkShellTemplates(c *checker, path string, argv []string) {
	if len(argv) < 2 || !slices.Contains(shells, filepath.Base(argv[0])) {
		return
	}
	for i, a := range argv[1:] {
		if ps := runenv.Placeholders(a); len(ps) > 0 && a != ps[0].Text {
			c.warnf(fmt.Sprintf("%s[%d]", path, i+1), "Template value inside a shell script", "%s is interpolated into a %s script, where its value becomes shell code. Read it from the environment instead, such as \"$RUNWAY_VERSION\", \"$RUNWAY_RELEASE\" or \"$PORT\".", ps[0].Text, filepath.Base(argv[0]))
			return
		}
	}
}

// envZones are the DNS zones a service of environment env may take names in.
func envZones(env, domain string) []string {
	zones := []string{naming.Environment(env, domain)}
	if local := naming.Environment(env, ""); local != zones[0] {
		zones = append(zones, local)
	}
	return zones
}

// hostAllowed reports whether host lies under the environment's zones or is
// listed (or matched by a *. pattern) in its hosts_allowed.
func hostAllowed(host string, env *Environment, domain string) bool {
	for _, z := range envZones(env.Name, domain) {
		if strings.HasSuffix(host, "."+z) {
			return true
		}
	}
	for _, a := range env.HostsAllowed {
		if host == a || (strings.HasPrefix(a, "*.") && strings.HasSuffix(host, a[1:])) {
			return true
		}
	}
	return false
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// warnPlanned warns at every block of v (a schema struct) whose field is
// tagged planned: accepted and checked, but nothing acts on it yet.
func warnPlanned(c *checker, v reflect.Value) {
	for _, f := range fieldsOf(v.Type()) {
		if f.Planned == "" {
			continue
		}
		fv := v.Field(f.Index)
		switch fv.Kind() {
		case reflect.Pointer:
			if !fv.IsNil() {
				c.warnf(f.Name, "Not acted on yet", "%s is accepted and checked, but %s.", f.Name, f.Planned)
			}
		case reflect.Slice:
			for i := 0; i < fv.Len(); i++ {
				path := fmt.Sprintf("%s[%d]", f.Name, i)
				for _, lf := range fieldsOf(fv.Index(i).Elem().Type()) {
					if lf.Kind == kindLabel {
						path = f.Name + "." + fv.Index(i).Elem().Field(lf.Index).String()
					}
				}
				c.warnf(path, "Not acted on yet", "%s %q is accepted and checked, but %s.", f.Name, strings.TrimPrefix(path, f.Name+"."), f.Planned)
			}
		}
	}
}
