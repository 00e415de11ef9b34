package config

import (
	"fmt"
	"reflect"
	"sort"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// sources maps a field path ("scale.min", "alarm.errors.notify[0]",
// "env.GREETING") to where its value came from, so validation can point at
// the exact expression, or at the enclosing block when a default applied.
type sources map[string]hcl.Range

func (s sources) at(path string) hcl.Range {
	for p := path; p != ""; p = parentPath(p) {
		if r, ok := s[p]; ok {
			return r
		}
	}
	return s[""]
}

func parentPath(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '.' || p[i] == '[' {
			return p[:i]
		}
	}
	return ""
}

func join(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// decode fills the struct dst points to from n, applying defaults.
func decode(n *node, dst reflect.Value, path string, src sources) hcl.Diagnostics {
	var diags hcl.Diagnostics
	if _, ok := src[path]; !ok {
		src[path] = n.defRng
	}
	for _, f := range fieldsOf(n.typ) {
		fv := dst.Field(f.Index)
		p := join(path, f.Name)
		switch f.Kind {
		case kindLabel:
			fv.SetString(n.label)
			src[join(path, "@label")] = n.labelRng
		case kindAttr:
			a, ok := n.attrs[f.Name]
			if !ok {
				if f.Required {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  fmt.Sprintf("Missing required argument %q", f.Name),
						Detail:   fmt.Sprintf("%s needs %s: %s. Add, for example, `%s`.", blockName(n), f.Name, f.Doc, example(f)),
						Subject:  n.defRng.Ptr(),
					})
					continue
				}
				a = defaultVal(f)
				a.rng = n.defRng
			}
			src[p] = a.rng
			for i, r := range a.elems {
				src[fmt.Sprintf("%s[%d]", p, i)] = r
			}
			for k, r := range a.keyRngs {
				src[p+"."+k] = r
			}
			if err := setValue(fv, a.val); err != nil {
				diags = append(diags, &hcl.Diagnostic{
					Severity: hcl.DiagError,
					Summary:  fmt.Sprintf("Invalid %s", f.Name),
					Detail:   fmt.Sprintf("%s: %v.", f.Name, err),
					Subject:  a.rng.Ptr(),
				})
			}
		case kindBlock, kindOptBlock:
			var child *node
			if list := n.blocks[f.Name]; len(list) > 0 {
				child = list[0]
			} else if f.Kind == kindOptBlock {
				continue
			} else {
				child = newNode(f.Type, n.defRng)
			}
			target := fv
			if f.Kind == kindOptBlock {
				fv.Set(reflect.New(f.Type))
				target = fv.Elem()
			}
			diags = append(diags, decode(child, target, p, src)...)
		case kindBlocks:
			list := n.blocks[f.Name]
			s := reflect.MakeSlice(fv.Type(), 0, len(list))
			for i, child := range list {
				elem := reflect.New(f.Type)
				cp := fmt.Sprintf("%s[%d]", p, i)
				if child.label != "" {
					cp = p + "." + child.label
				}
				src[cp] = child.defRng
				diags = append(diags, decode(child, elem.Elem(), cp, src)...)
				s = reflect.Append(s, elem)
			}
			fv.Set(s)
		}
	}
	return diags
}

func blockName(n *node) string {
	name := n.typ.Name()
	if n.label != "" {
		return fmt.Sprintf("%s %q", name, n.label)
	}
	return "this " + name + " block"
}

// defaultVal evaluates a field's default tag.
func defaultVal(f field) *attrVal {
	expr := f.Default
	if expr == "" {
		panic("config: field " + f.Name + " has neither a default nor required:\"true\"")
	}
	e, d := hclsyntax.ParseExpression([]byte(expr), "default", hcl.InitialPos)
	if d.HasErrors() {
		panic("config: bad default for " + f.Name + ": " + d.Error())
	}
	v, d := e.Value(nil)
	if d.HasErrors() {
		panic("config: bad default for " + f.Name + ": " + d.Error())
	}
	cv, err := convert.Convert(v, ctyType(f.Type))
	if err != nil {
		panic("config: bad default for " + f.Name + ": " + err.Error())
	}
	return &attrVal{val: cv}
}

// setValue stores a converted cty value into a Go field.
func setValue(fv reflect.Value, v cty.Value) error {
	switch {
	case fv.Type() == reflect.TypeOf(Duration{}):
		s := v.AsString()
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration; use a number with a unit, such as \"500ms\", \"30s\", \"2m\" or \"1h30m\"", s)
		}
		if d < 0 {
			return fmt.Errorf("%q is negative; durations must be zero or more", s)
		}
		fv.Set(reflect.ValueOf(Duration{d}))
	case fv.Kind() == reflect.String:
		fv.SetString(v.AsString())
	case fv.Kind() == reflect.Int:
		i, _ := v.AsBigFloat().Int64()
		fv.SetInt(i)
	case fv.Kind() == reflect.Float64:
		f, _ := v.AsBigFloat().Float64()
		fv.SetFloat(f)
	case fv.Kind() == reflect.Bool:
		fv.SetBool(v.True())
	case fv.Kind() == reflect.Slice:
		out := []string{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, e.AsString())
		}
		fv.Set(reflect.ValueOf(out))
	case fv.Kind() == reflect.Map:
		out := map[string]string{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = e.AsString()
		}
		fv.Set(reflect.ValueOf(out))
	default:
		return fmt.Errorf("unsupported type %s", fv.Type())
	}
	return nil
}

// sortedKeys returns the keys of a string map in order.
func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Defaults is a block of type T (Health, Hooks, Deploy, ...) with every
// attribute at its schema default — the `default` tags, the one place
// defaults are declared: what a manifest that leaves the block out gets,
// and what the agent fills in for a group spec that leaves a field out.
// Computed defaults (a health timeout above its interval) are the caller's.
func Defaults[T any]() T {
	var v T
	t := reflect.TypeOf(v)
	if d := decode(newNode(t, hcl.Range{}), reflect.ValueOf(&v).Elem(), "", sources{}); d.HasErrors() {
		panic("config: defaults of " + t.Name() + ": " + d.Error())
	}
	return v
}
