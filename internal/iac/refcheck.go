package iac

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Finding is one problem at a place in a file.
type Finding struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (f Finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", f.File, f.Line, f.Rule, f.Message)
}

func finding(r hcl.Range, rule, format string, args ...any) Finding {
	return Finding{File: r.Filename, Line: r.Start.Line, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

func sortFindings(fs []Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		if fs[i].File != fs[j].File {
			return fs[i].File < fs[j].File
		}
		return fs[i].Line < fs[j].Line
	})
}

// ReadTFFiles reads every .tf file under dir (skipping .terraform), keyed by
// slash path relative to dir.
func ReadTFFiles(dir string) (map[string][]byte, error) {
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".terraform" {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, ".tf") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return files, nil
}

// TFFiles returns the .tf files of a generated tree.
func (t Tree) TFFiles() map[string][]byte {
	out := map[string][]byte{}
	for p, b := range t {
		if strings.HasSuffix(p, ".tf") {
			out[p] = b
		}
	}
	return out
}

// moduleInfo is what a directory of .tf files declares.
type moduleInfo struct {
	dir          string
	bodies       []*hclsyntax.Body
	variables    map[string]bool // name => has default
	locals       map[string]bool
	resources    map[string]bool // "type.name"
	data         map[string]bool // "type.name"
	modules      map[string]*hclsyntax.Block
	outputs      map[string]bool
	remoteStates map[string]string // name => root dir of its key
}

// parseModules parses files into one moduleInfo per directory; syntax errors
// are findings.
func parseModules(files map[string][]byte) (map[string]*moduleInfo, []Finding) {
	mods := map[string]*moduleInfo{}
	var out []Finding
	for _, name := range sortedKeys(files) {
		f, diags := hclsyntax.ParseConfig(files[name], name, hcl.InitialPos)
		if diags.HasErrors() {
			for _, d := range diags {
				r := hcl.Range{Filename: name}
				if d.Subject != nil {
					r = *d.Subject
				}
				out = append(out, finding(r, "syntax", "%s: %s", d.Summary, d.Detail))
			}
			continue
		}
		dir := path.Dir(name)
		m := mods[dir]
		if m == nil {
			m = &moduleInfo{dir: dir, variables: map[string]bool{}, locals: map[string]bool{}, resources: map[string]bool{},
				data: map[string]bool{}, modules: map[string]*hclsyntax.Block{}, outputs: map[string]bool{}, remoteStates: map[string]string{}}
			mods[dir] = m
		}
		body := f.Body.(*hclsyntax.Body)
		m.bodies = append(m.bodies, body)
		for _, b := range body.Blocks {
			switch {
			case b.Type == "variable" && len(b.Labels) == 1:
				_, hasDefault := b.Body.Attributes["default"]
				m.variables[b.Labels[0]] = hasDefault
			case b.Type == "locals":
				for n := range b.Body.Attributes {
					m.locals[n] = true
				}
			case b.Type == "resource" && len(b.Labels) == 2:
				m.resources[b.Labels[0]+"."+b.Labels[1]] = true
			case b.Type == "data" && len(b.Labels) == 2:
				m.data[b.Labels[0]+"."+b.Labels[1]] = true
				if b.Labels[0] == "terraform_remote_state" {
					m.remoteStates[b.Labels[1]] = remoteStateRoot(b.Body)
				}
			case b.Type == "module" && len(b.Labels) == 1:
				m.modules[b.Labels[0]] = b
			case b.Type == "output" && len(b.Labels) == 1:
				m.outputs[b.Labels[0]] = true
			}
		}
	}
	return mods, out
}

func remoteStateRoot(b *hclsyntax.Body) string {
	a, ok := b.Attributes["config"]
	if !ok {
		return ""
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || !v.Type().IsObjectType() || !v.Type().HasAttribute("key") {
		return ""
	}
	k := v.GetAttr("key")
	if k.Type() != cty.String || !k.IsKnown() || k.IsNull() {
		return ""
	}
	return strings.TrimSuffix(k.AsString(), "/terraform.tfstate")
}

// CheckReferences verifies that every variable, local, resource, data
// source, module and module or remote-state output referenced in files is
// declared, and that module calls set only (and all required) variables of
// local modules. Paths of remote-state keys are resolved against the roots
// in files, so it works on a whole generated tree.
func CheckReferences(files map[string][]byte) []Finding {
	mods, out := parseModules(files)
	for _, dir := range sortedKeys(mods) {
		m := mods[dir]
		for _, body := range m.bodies {
			for _, b := range body.Blocks {
				out = append(out, checkBlock(mods, m, b)...)
			}
		}
	}
	sortFindings(out)
	return out
}

// metaArgs of a module block are not variables of the module.
var metaArgs = map[string]bool{"source": true, "version": true, "providers": true, "count": true, "for_each": true, "depends_on": true}

func checkBlock(mods map[string]*moduleInfo, m *moduleInfo, b *hclsyntax.Block) []Finding {
	var out []Finding
	switch b.Type {
	case "terraform":
		return nil // provider addresses and backend settings, not references
	case "module":
		out = append(out, checkModuleCall(mods, m, b)...)
	}
	out = append(out, checkBody(mods, m, b.Body, b.Type)...)
	return out
}

func checkBody(mods map[string]*moduleInfo, m *moduleInfo, body *hclsyntax.Body, blockType string) []Finding {
	var out []Finding
	for _, name := range sortedKeys(body.Attributes) {
		a := body.Attributes[name]
		// Provider references and lifecycle attribute names are not values.
		if name == "provider" || (blockType == "module" && name == "providers") || (blockType == "lifecycle" && name == "ignore_changes") || (blockType == "variable" && name == "type") {
			continue
		}
		for _, t := range a.Expr.Variables() {
			if f, ok := checkTraversal(mods, m, t); !ok {
				out = append(out, f)
			}
		}
	}
	for _, nb := range body.Blocks {
		out = append(out, checkBody(mods, m, nb.Body, nb.Type)...)
	}
	return out
}

func checkTraversal(mods map[string]*moduleInfo, m *moduleInfo, t hcl.Traversal) (Finding, bool) {
	root := t.RootName()
	attr := func(i int) string {
		if i >= len(t) {
			return ""
		}
		switch s := t[i].(type) {
		case hcl.TraverseAttr:
			return s.Name
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String && s.Key.IsKnown() && !s.Key.IsNull() {
				return s.Key.AsString()
			}
		}
		return ""
	}
	r := t.SourceRange()
	switch root {
	case "each", "count", "self", "path", "terraform":
		return Finding{}, true
	case "var":
		if _, ok := m.variables[attr(1)]; !ok {
			return finding(r, "reference", "var.%s is not declared in %s", attr(1), m.dir), false
		}
	case "local":
		if !m.locals[attr(1)] {
			return finding(r, "reference", "local.%s is not declared in %s", attr(1), m.dir), false
		}
	case "module":
		call, ok := m.modules[attr(1)]
		if !ok {
			return finding(r, "reference", "module.%s is not declared in %s", attr(1), m.dir), false
		}
		if target := moduleDir(mods, m, call); target != nil && attr(2) != "" && !target.outputs[attr(2)] {
			return finding(r, "reference", "module.%s has no output %q (%s)", attr(1), attr(2), target.dir), false
		}
	case "data":
		key := attr(1) + "." + attr(2)
		if !m.data[key] {
			return finding(r, "reference", "data.%s is not declared in %s", key, m.dir), false
		}
		if attr(1) == "terraform_remote_state" && attr(3) == "outputs" && attr(4) != "" {
			rootDir := m.remoteStates[attr(2)]
			if target, ok := mods[rootDir]; ok && !target.outputs[attr(4)] {
				return finding(r, "reference", "root %s has no output %q", rootDir, attr(4)), false
			}
		}
	default:
		key := root + "." + attr(1)
		if !m.resources[key] {
			return finding(r, "reference", "%s is not declared in %s", key, m.dir), false
		}
	}
	return Finding{}, true
}

// moduleDir returns the parsed local module a call's source points to.
func moduleDir(mods map[string]*moduleInfo, m *moduleInfo, call *hclsyntax.Block) *moduleInfo {
	a, ok := call.Body.Attributes["source"]
	if !ok {
		return nil
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() {
		return nil
	}
	src := v.AsString()
	if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "../") {
		return nil
	}
	return mods[path.Clean(path.Join(m.dir, src))]
}

func checkModuleCall(mods map[string]*moduleInfo, m *moduleInfo, call *hclsyntax.Block) []Finding {
	target := moduleDir(mods, m, call)
	if target == nil {
		if _, ok := call.Body.Attributes["source"]; !ok {
			return []Finding{finding(call.TypeRange, "reference", "module %q has no source", call.Labels[0])}
		}
		return nil // a registry module: its variables are not known here
	}
	var out []Finding
	for _, name := range sortedKeys(call.Body.Attributes) {
		if metaArgs[name] {
			continue
		}
		if _, ok := target.variables[name]; !ok {
			out = append(out, finding(call.Body.Attributes[name].SrcRange, "reference", "module %q (%s) has no variable %q", call.Labels[0], target.dir, name))
		}
	}
	for _, v := range sortedKeys(target.variables) {
		if _, set := call.Body.Attributes[v]; !set && !target.variables[v] {
			out = append(out, finding(call.TypeRange, "reference", "module %q does not set required variable %q of %s", call.Labels[0], v, target.dir))
		}
	}
	return out
}
