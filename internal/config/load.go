package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// ProjectFileName is the project file at the root of a repository.
const ProjectFileName = "runway.hcl"

// Workspace is a project with the service manifests found next to it.
type Workspace struct {
	Project  *Project
	Services []*ServiceManifest

	opts    Options
	files   map[string]*hcl.File
	project *node
}

// TargetLimits are what a target can measure or carry that validation must
// respect. They come from the target's declared capabilities (the server's
// target registry), never from a copy of the numbers here; the zero value
// checks nothing.
type TargetLimits struct {
	// StatsWindowMin and StatsWindowMax bound the statistics windows the
	// target can answer for (a canary's pause is its analysis window).
	StatsWindowMin, StatsWindowMax time.Duration
	// ReplicaRatio: the target splits a canary's traffic by instance counts
	// (Kubernetes traffic "service"), so only the weights such a ratio
	// gives exactly are accepted (ReplicaRatioWeights).
	ReplicaRatio bool
	// NoStats: the target measures no per-group statistics, so a canary,
	// whose analysis reads them, is refused.
	NoStats bool
}

// Options tune loading.
type Options struct {
	// Targets maps a target kind ("local", ...) to its limits.
	Targets map[string]TargetLimits
	// Exposed, when set, reports the ports ("8080/tcp") image exposes on
	// the container engine at host ("": the default engine), ok false when
	// the engine does not have it or does not answer. Loading from files
	// then warns, located at port, where a service of a docker environment
	// listens on a port its image does not expose.
	Exposed func(host, image string) (ports []string, ok bool)
}

// ServiceManifest is one service as written: its base and its environment
// overrides, not yet resolved.
type ServiceManifest struct {
	Name string
	File string
	Dir  string

	base *node
	envs map[string]*node
}

// Environments returns the names of environments the manifest overrides.
func (m *ServiceManifest) Environments() []string {
	out := make([]string, 0, len(m.envs))
	for k := range m.envs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Files returns the parsed files by name, for rendering diagnostics.
func (w *Workspace) Files() map[string]*hcl.File { return w.files }

// Service returns the manifest of the named service, or nil.
func (w *Workspace) Service(name string) *ServiceManifest {
	for _, s := range w.Services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// Environment returns the named environment of the project, or nil.
func (p *Project) Environment(name string) *Environment {
	for _, e := range p.Environments {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// EnvironmentNames lists the project's environments in declaration order.
func (p *Project) EnvironmentNames() []string {
	out := make([]string, len(p.Environments))
	for i, e := range p.Environments {
		out[i] = e.Name
	}
	return out
}

// Load reads a project and its service manifests. Each path is a
// directory (searched recursively for *.service.hcl and service.hcl, and
// for runway.hcl in it or its parents) or a file. It returns every problem
// found, not just the first; the workspace is nil when any is an error.
func Load(paths ...string) (*Workspace, hcl.Diagnostics) {
	return LoadWith(Options{}, paths...)
}

// LoadWith is Load with options (the limits of the targets).
func LoadWith(opts Options, paths ...string) (*Workspace, hcl.Diagnostics) {
	if len(paths) == 0 {
		paths = []string{"."}
	}
	w := &Workspace{opts: opts, files: map[string]*hcl.File{}}
	var diags hcl.Diagnostics
	var projectPath string
	var serviceFiles []string
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			diags = append(diags, fileDiag("Cannot read "+p, fmt.Sprintf("%v. Give the path of a project directory or of a .hcl file.", unwrapPathErr(err))))
			continue
		}
		if !st.IsDir() {
			if filepath.Base(p) == ProjectFileName {
				projectPath = p
			} else {
				serviceFiles = append(serviceFiles, p)
			}
			continue
		}
		found, err := findServiceFiles(p)
		if err != nil {
			diags = append(diags, fileDiag("Cannot read "+p, err.Error()))
		}
		serviceFiles = append(serviceFiles, found...)
		if projectPath == "" {
			projectPath = findProjectFile(p)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	if projectPath == "" {
		start := paths[0]
		if st, err := os.Stat(start); err == nil && !st.IsDir() {
			start = filepath.Dir(start)
		}
		projectPath = findProjectFile(start)
	}
	if projectPath == "" {
		return nil, append(diags, fileDiag("No runway.hcl found",
			fmt.Sprintf("Runway looked for %s in %s and its parent directories. Run `runway project init` at the root of your repository to create one.", ProjectFileName, paths[0])))
	}
	diags = append(diags, w.loadProject(projectPath)...)
	sort.Strings(serviceFiles)
	seen := map[string]string{}
	for _, f := range uniq(serviceFiles) {
		diags = append(diags, w.loadServices(f, seen)...)
	}
	if w.Project != nil {
		diags = append(diags, w.resolveAll()...)
	}
	diags = dedupe(diags)
	if !diags.HasErrors() {
		// Files are here (not on the server): check what builds read.
		diags = append(diags, w.CheckBuildContexts()...)
		diags = append(diags, w.checkExposed()...)
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return w, diags
}

func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func fileDiag(summary, detail string) *hcl.Diagnostic {
	return &hcl.Diagnostic{Severity: hcl.DiagError, Summary: summary, Detail: detail}
}

func uniq(in []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range in {
		c := filepath.Clean(s)
		if !seen[c] {
			seen[c] = true
			out = append(out, s)
		}
	}
	return out
}

// findServiceFiles walks dir for service manifests, skipping hidden,
// vendored and test-data directories.
func findServiceFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			n := d.Name()
			if p != dir && (strings.HasPrefix(n, ".") || n == "node_modules" || n == "vendor" || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if n := d.Name(); n == "service.hcl" || strings.HasSuffix(n, ".service.hcl") {
			out = append(out, p)
		}
		return nil
	})
	return out, err
}

// FindProjectFile returns the path of runway.hcl in dir or its nearest
// parent, or "" when there is none.
func FindProjectFile(dir string) string { return findProjectFile(dir) }

// findProjectFile returns runway.hcl in dir or its nearest parent, or "".
func findProjectFile(dir string) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	for d := abs; ; d = filepath.Dir(d) {
		p := filepath.Join(d, ProjectFileName)
		if _, err := os.Stat(p); err == nil {
			if rel, err := filepath.Rel(mustGetwd(), p); err == nil && !strings.HasPrefix(rel, "../../") {
				return rel
			}
			return p
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

func mustGetwd() string {
	wd, _ := os.Getwd()
	return wd
}

func (w *Workspace) parse(path string) (*hclsyntax.Body, hcl.Diagnostics) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, hcl.Diagnostics{fileDiag("Cannot read "+path, unwrapPathErr(err).Error())}
	}
	return w.parseSource(src, path)
}

func (w *Workspace) parseSource(src []byte, path string) (*hclsyntax.Body, hcl.Diagnostics) {
	f, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if f != nil {
		w.files[path] = f
	}
	if diags.HasErrors() {
		return nil, diags
	}
	return f.Body.(*hclsyntax.Body), diags
}

func (w *Workspace) loadProject(path string) hcl.Diagnostics {
	body, diags := w.parse(path)
	if body == nil {
		return diags
	}
	return w.readProject(body, path)
}

func (w *Workspace) readProject(body *hclsyntax.Body, path string) hcl.Diagnostics {
	fileRng := hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos}
	n, diags := readBody(body, reflect.TypeOf(projectFile{}), fileRng, ProjectFileName, false)
	if len(n.blocks["project"]) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "Missing project block",
			Detail:   `runway.hcl needs one project block naming the project, such as: project "acme" { domain = "acme.test" }`,
			Subject:  &fileRng,
		})
	}
	if len(n.blocks["environment"]) == 0 {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No environment declared",
			Detail:   `runway.hcl needs at least one environment, such as: environment "development" { target = "local" }`,
			Subject:  &fileRng,
		})
	}
	if len(n.blocks["project"]) == 0 || len(n.blocks["environment"]) == 0 {
		return diags
	}
	var pf projectFile
	src := sources{}
	d := decode(n, reflect.ValueOf(&pf).Elem(), "", src)
	diags = append(diags, d...)
	if d.HasErrors() {
		return diags
	}
	abs, _ := filepath.Abs(path)
	p := &Project{
		Name: pf.Project.Name, Domain: pf.Project.Domain,
		Environments: pf.Environments, Network: pf.Network, Notify: pf.Notify,
		File: path, Dir: filepath.Dir(abs),
	}
	diags = append(diags, validateProject(p, src)...)
	w.project = n
	if !diags.HasErrors() {
		w.Project = p
	}
	return diags
}

func (w *Workspace) loadServices(path string, seen map[string]string) hcl.Diagnostics {
	body, diags := w.parse(path)
	if body == nil {
		return diags
	}
	return append(diags, w.readServices(body, path, seen)...)
}

func (w *Workspace) readServices(body *hclsyntax.Body, path string, seen map[string]string) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for _, name := range sortedAttrNames(body) {
		a := body.Attributes[name]
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unexpected argument %q outside a service block", name),
			Detail:   `A service manifest holds service blocks: service "name" { ... }. Move this argument inside one.`,
			Subject:  a.NameRange.Ptr(),
		})
	}
	count := 0
	for _, b := range body.Blocks {
		if b.Type != "service" {
			d := &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Unsupported block type %q", b.Type),
				Detail:   `A service manifest holds service blocks: service "name" { ... }.`,
				Subject:  b.TypeRange.Ptr(),
			}
			if s := suggest(b.Type, []string{"service"}); s != "" {
				d.Detail += ` Did you mean "service"?`
			} else if b.Type == "project" || b.Type == "environment" || b.Type == "network" || b.Type == "notify" {
				d.Detail += " " + b.Type + " blocks belong in runway.hcl."
			}
			diags = append(diags, d)
			continue
		}
		if len(b.Labels) != 1 {
			diags = append(diags, labelDiag(b, "service", "the service's name", `service "web" { ... }`))
			continue
		}
		count++
		name := b.Labels[0]
		if prev, dup := seen[name]; dup {
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Duplicate service %q", name),
				Detail:   fmt.Sprintf("Service %q is already defined at %s. Service names are unique in a project: rename one of them.", name, prev),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		seen[name] = b.DefRange().String()
		n, d := readBody(b.Body, reflect.TypeOf(Service{}), b.DefRange(), fmt.Sprintf("service %q", name), true)
		diags = append(diags, d...)
		n.label, n.labelRng = name, b.LabelRanges[0]
		abs, _ := filepath.Abs(path)
		m := &ServiceManifest{Name: name, File: path, Dir: filepath.Dir(abs), base: n, envs: map[string]*node{}}
		for _, e := range n.envs {
			m.envs[e.label] = e
		}
		w.Services = append(w.Services, m)
	}
	if count == 0 && !diags.HasErrors() {
		diags = append(diags, &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  "No service block",
			Detail:   `A service manifest needs a service block, such as: service "web" { command = ["./web"] }. Run "runway service init NAME" to write one.`,
			Subject:  &hcl.Range{Filename: path, Start: hcl.InitialPos, End: hcl.InitialPos},
		})
	}
	return diags
}

// resolveAll resolves every service for every environment, collecting all problems.
func (w *Workspace) resolveAll() hcl.Diagnostics {
	var diags hcl.Diagnostics
	owners := map[string]string{} // host -> who serves it
	for _, s := range w.Services {
		diags = append(diags, w.checkOverrides(s)...)
		for _, env := range w.Project.Environments {
			svc, src, d := w.resolve(s.Name, env.Name)
			diags = append(diags, d...)
			if svc == nil {
				continue
			}
			who := fmt.Sprintf("service %q in environment %q", svc.Name, env.Name)
			for _, h := range svc.RouteHosts() {
				if prev, taken := owners[h.Name]; taken && prev != who {
					r := src.at(h.Field)
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  "Host used twice",
						Detail:   fmt.Sprintf("%s would serve %s, which %s serves already; a host belongs to one service of one environment. Choose another name.", who, h.Name, prev),
						Subject:  &r,
					})
					continue
				}
				owners[h.Name] = who
			}
		}
	}
	return diags
}

// checkOverrides reports environment overrides for environments the project does not declare.
func (w *Workspace) checkOverrides(m *ServiceManifest) hcl.Diagnostics {
	var diags hcl.Diagnostics
	envs := w.Project.EnvironmentNames()
	for _, e := range m.base.envs {
		if w.Project.Environment(e.label) != nil {
			continue
		}
		d := &hcl.Diagnostic{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Unknown environment %q", e.label),
			Detail:   fmt.Sprintf("Service %q overrides environment %q, but %s declares only %s.", m.Name, e.label, w.Project.File, strings.Join(quoteAll(envs), ", ")),
			Subject:  e.labelRng.Ptr(),
		}
		if s := suggest(e.label, envs); s != "" {
			d.Detail += fmt.Sprintf(" Did you mean %q?", s)
		} else {
			d.Detail += " Declare it in runway.hcl or remove the override."
		}
		diags = append(diags, d)
	}
	return diags
}

func quoteAll(in []string) []string {
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

// ErrUnknownService is returned by Resolve for a service the workspace lacks.
var ErrUnknownService = errors.New("unknown service")

// Resolve returns the manifest of service for environment env: the
// environment's override deep-merged over the base, defaults applied, and
// validated against the project.
func (w *Workspace) Resolve(service, env string) (*Service, hcl.Diagnostics) {
	s, _, diags := w.resolve(service, env)
	return s, diags
}

func (w *Workspace) resolve(service, env string) (*Service, sources, hcl.Diagnostics) {
	m := w.Service(service)
	if m == nil {
		names := make([]string, len(w.Services))
		for i, s := range w.Services {
			names[i] = s.Name
		}
		detail := fmt.Sprintf("No manifest defines service %q; found: %s.", service, strings.Join(quoteAll(names), ", "))
		if s := suggest(service, names); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		return nil, nil, hcl.Diagnostics{fileDiag(fmt.Sprintf("Unknown service %q", service), detail)}
	}
	e := w.Project.Environment(env)
	if e == nil {
		envs := w.Project.EnvironmentNames()
		detail := fmt.Sprintf("%s declares %s.", w.Project.File, strings.Join(quoteAll(envs), ", "))
		if s := suggest(env, envs); s != "" {
			detail += fmt.Sprintf(" Did you mean %q?", s)
		}
		return nil, nil, hcl.Diagnostics{fileDiag(fmt.Sprintf("Unknown environment %q", env), detail)}
	}
	n := merge(m.base, m.envs[env])
	var s Service
	src := sources{}
	diags := decode(n, reflect.ValueOf(&s).Elem(), "", src)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	applyComputedDefaults(&s, n)
	s.Environment, s.Project, s.Domain, s.File, s.Dir = env, w.Project.Name, w.Project.Domain, m.File, m.Dir
	s.Protected, s.Target = e.Protected, e.Target
	if s.Build != nil && s.Image == "" && ImageTarget(e.Target) {
		s.Image = DefaultImage(s.Name, e.Registry)
	}
	diags = append(diags, validateService(&s, w.Project, e, w.opts.Targets[e.KubernetesTarget()], src)...)
	if diags.HasErrors() {
		return nil, nil, diags
	}
	return &s, src, diags
}

// applyComputedDefaults fills defaults that depend on other fields.
func applyComputedDefaults(s *Service, n *node) {
	var scale *node
	if l := n.blocks["scale"]; len(l) > 0 {
		scale = l[0]
	}
	set := func(name string) bool { return scale != nil && scale.attrs[name] != nil }
	if !set("max") {
		s.Scale.Max = max(s.Scale.Desired, s.Scale.Min)
	}
	if !set("min") && s.Scale.Desired < s.Scale.Min {
		s.Scale.Min = s.Scale.Desired
	}
	// A check must end before the next starts: with only a short interval
	// set, the timeout follows it down rather than making the manifest invalid.
	var health *node
	if l := n.blocks["health"]; len(l) > 0 {
		health = l[0]
	}
	if (health == nil || health.attrs["timeout"] == nil) && s.Health.Interval.Duration < s.Health.Timeout.Duration {
		s.Health.Timeout = s.Health.Interval
	}
}

// dedupe drops diagnostics repeated by resolving one base for several
// environments, and orders them by file and position.
func dedupe(in hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	seen := map[string]bool{}
	for _, d := range in {
		key := d.Summary + "\x00" + d.Detail
		if d.Subject != nil {
			key += "\x00" + d.Subject.String()
		}
		if !seen[key] {
			seen[key] = true
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Subject, out[j].Subject
		switch {
		case a == nil || b == nil:
			return a == nil && b != nil
		case a.Filename != b.Filename:
			return a.Filename < b.Filename
		}
		return a.Start.Byte < b.Start.Byte
	})
	return out
}

// ParseProjectSource parses runway.hcl content without touching the disk
// (for fuzzing and tests).
func ParseProjectSource(src []byte, filename string) (*Project, hcl.Diagnostics) {
	w := &Workspace{files: map[string]*hcl.File{}}
	if filename == "" {
		filename = ProjectFileName
	}
	body, diags := w.parseSource(src, filename)
	if body == nil {
		return nil, diags
	}
	diags = append(diags, w.readProject(body, filename)...)
	return w.Project, diags
}

// LoadSources builds a workspace from in-memory files (project source and
// service manifests by file name), validating like Load. The server builds
// every release from it: the project is its own copy, the services are the
// files the deploy request carries.
func LoadSources(project []byte, services map[string][]byte) (*Workspace, hcl.Diagnostics) {
	return LoadSourcesWith(Options{}, project, services)
}

// LoadSourcesWith is LoadSources with options.
func LoadSourcesWith(opts Options, project []byte, services map[string][]byte) (*Workspace, hcl.Diagnostics) {
	w := &Workspace{opts: opts, files: map[string]*hcl.File{}}
	body, diags := w.parseSource(project, ProjectFileName)
	if body != nil {
		diags = append(diags, w.readProject(body, ProjectFileName)...)
	}
	names := make([]string, 0, len(services))
	for k := range services {
		names = append(names, k)
	}
	sort.Strings(names)
	seen := map[string]string{}
	for _, name := range names {
		b, d := w.parseSource(services[name], name)
		diags = append(diags, d...)
		if b != nil {
			diags = append(diags, w.readServices(b, name, seen)...)
		}
	}
	if w.Project != nil {
		diags = append(diags, w.resolveAll()...)
	}
	return w, dedupe(diags)
}
