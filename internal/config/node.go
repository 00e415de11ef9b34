package config

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// attrVal is one attribute's value with the source ranges needed for diagnostics.
type attrVal struct {
	val     cty.Value
	rng     hcl.Range            // the value expression
	elems   []hcl.Range          // list elements, when written as a list literal
	keyRngs map[string]hcl.Range // map entries, when written as an object literal
}

// node is a block read against the schema but not yet defaulted: what the
// user wrote, so that environment overrides can be merged field by field.
type node struct {
	typ      reflect.Type
	label    string
	labelRng hcl.Range
	defRng   hcl.Range // the block header, where defaulted values "come from"
	attrs    map[string]*attrVal
	blocks   map[string][]*node
	envs     []*node // service blocks only: environment "NAME" { ... } overrides
}

func newNode(t reflect.Type, def hcl.Range) *node {
	return &node{typ: t, defRng: def, attrs: map[string]*attrVal{}, blocks: map[string][]*node{}}
}

// readBody reads an hclsyntax body into a node of struct type t.
// allowEnv permits `environment "NAME"` override blocks (service bodies).
func readBody(body *hclsyntax.Body, t reflect.Type, def hcl.Range, where string, allowEnv bool) (*node, hcl.Diagnostics) {
	var diags hcl.Diagnostics
	n := newNode(t, def)
	for _, name := range sortedAttrNames(body) {
		a := body.Attributes[name]
		f, ok := lookupField(t, name)
		if !ok || f.Kind != kindAttr {
			diags = append(diags, unknownAttr(a, t, where, ok))
			continue
		}
		if f.MapTo != "" {
			if v, d := a.Expr.Value(nil); !d.HasErrors() && (v.Type().IsObjectType() || v.Type().IsMapType()) {
				mf, _ := lookupField(t, f.MapTo)
				if other, both := body.Attributes[mf.Name]; both {
					diags = append(diags, &hcl.Diagnostic{
						Severity: hcl.DiagError,
						Summary:  fmt.Sprintf("%s given twice", mf.Name),
						Detail:   fmt.Sprintf("A map in %s is the same as %s, which %s also sets; write the map in one of them.", name, mf.Name, where),
						Subject:  a.Expr.Range().Ptr(),
						Context:  other.SrcRange.Ptr(),
					})
					continue
				}
				f, name = mf, mf.Name
			}
		}
		av, d := readAttr(a, f, where)
		diags = append(diags, d...)
		if av != nil {
			n.attrs[name] = av
		}
	}
	seen := map[string]hcl.Range{}
	for _, b := range body.Blocks {
		if allowEnv && b.Type == "environment" {
			if len(b.Labels) != 1 {
				diags = append(diags, labelDiag(b, "environment", "the environment's name", `environment "production" { ... }`))
				continue
			}
			key := "environment." + b.Labels[0]
			if prev, dup := seen[key]; dup {
				diags = append(diags, dupBlock(b, fmt.Sprintf("environment %q", b.Labels[0]), prev))
				continue
			}
			seen[key] = b.DefRange()
			env, d := readBody(b.Body, t, b.DefRange(), fmt.Sprintf("environment %q override", b.Labels[0]), false)
			diags = append(diags, d...)
			env.label, env.labelRng = b.Labels[0], b.LabelRanges[0]
			n.envs = append(n.envs, env)
			continue
		}
		f, ok := lookupField(t, b.Type)
		if !ok || f.Kind == kindAttr {
			diags = append(diags, unknownBlock(b, t, where, ok, allowEnv))
			continue
		}
		lab := f.labelled()
		switch {
		case lab && len(b.Labels) != 1:
			diags = append(diags, labelDiag(b, b.Type, "a name", fmt.Sprintf("%s \"name\" { ... }", b.Type)))
			continue
		case !lab && len(b.Labels) != 0:
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("Unexpected label on %s block", b.Type),
				Detail:   fmt.Sprintf("A %s block takes no label. Write `%s { ... }`.", b.Type, b.Type),
				Subject:  b.LabelRanges[0].Ptr(),
			})
			continue
		}
		key := b.Type
		if lab {
			key += "." + b.Labels[0]
		}
		if prev, dup := seen[key]; dup && (lab || f.Kind != kindBlocks) {
			what := b.Type
			if lab {
				what = fmt.Sprintf("%s %q", b.Type, b.Labels[0])
			}
			diags = append(diags, dupBlock(b, what, prev))
			continue
		}
		seen[key] = b.DefRange()
		childWhere := b.Type + " block"
		if lab {
			childWhere = fmt.Sprintf("%s %q", b.Type, b.Labels[0])
		}
		child, d := readBody(b.Body, f.Type, b.DefRange(), childWhere, false)
		diags = append(diags, d...)
		if lab {
			child.label, child.labelRng = b.Labels[0], b.LabelRanges[0]
		}
		n.blocks[f.Name] = append(n.blocks[f.Name], child)
	}
	return n, diags
}

func sortedAttrNames(body *hclsyntax.Body) []string {
	// Source order gives diagnostics in the order the user reads the file.
	out := make([]string, 0, len(body.Attributes))
	for name := range body.Attributes {
		out = append(out, name)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && rangeLess(body.Attributes[out[j]].SrcRange, body.Attributes[out[j-1]].SrcRange); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func rangeLess(a, b hcl.Range) bool { return a.Start.Byte < b.Start.Byte }

// readAttr evaluates an attribute as a literal and converts it to the field's type.
func readAttr(a *hclsyntax.Attribute, f field, where string) (*attrVal, hcl.Diagnostics) {
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		for _, d := range diags {
			if d.Detail != "" && strings.Contains(d.Summary, "not allowed") {
				d.Detail += " Runway manifests take literal values only: write the value itself (a string in quotes, a number, a list in [ ], a map in { })."
			}
		}
		return nil, diags
	}
	if v.IsNull() {
		return nil, nil
	}
	av := &attrVal{rng: a.Expr.Range()}
	switch e := a.Expr.(type) {
	case *hclsyntax.TupleConsExpr:
		for _, x := range e.Exprs {
			av.elems = append(av.elems, x.Range())
		}
	case *hclsyntax.ObjectConsExpr:
		av.keyRngs = map[string]hcl.Range{}
		for _, it := range e.Items {
			if k, d := it.KeyExpr.Value(nil); !d.HasErrors() && k.Type() == cty.String {
				av.keyRngs[k.AsString()] = hcl.RangeBetween(it.KeyExpr.Range(), it.ValueExpr.Range())
			}
		}
	}
	want := ctyType(f.Type)
	cv, err := convert.Convert(v, want)
	if err != nil || (want == cty.List(cty.String) && hasNullElem(cv)) {
		return nil, hcl.Diagnostics{{
			Severity: hcl.DiagError,
			Summary:  fmt.Sprintf("Wrong type for %q", f.Name),
			Detail:   fmt.Sprintf("%s in %s must be a %s; got %s. Example: %s", f.Name, where, typeName(f.Type), friendlyType(v.Type()), example(f)),
			Subject:  av.rng.Ptr(),
		}}
	}
	if f.Type.Kind() == reflect.Int {
		if bf := cv.AsBigFloat(); !bf.IsInt() {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s must be a whole number", f.Name),
				Detail:   fmt.Sprintf("%s in %s must be a whole number; got %s.", f.Name, where, bf.Text('g', -1)),
				Subject:  av.rng.Ptr(),
			}}
		}
		if _, acc := cv.AsBigFloat().Int64(); acc != 0 || !fitsInt(cv) {
			return nil, hcl.Diagnostics{{
				Severity: hcl.DiagError,
				Summary:  fmt.Sprintf("%s is out of range", f.Name),
				Detail:   fmt.Sprintf("%s in %s is too large.", f.Name, where),
				Subject:  av.rng.Ptr(),
			}}
		}
	}
	av.val = cv
	return av, nil
}

func fitsInt(v cty.Value) bool {
	i, acc := v.AsBigFloat().Int64()
	return acc == 0 && i >= -1<<31 && i <= 1<<31-1
}

func hasNullElem(v cty.Value) bool {
	if v.IsNull() || !v.IsKnown() {
		return true
	}
	for it := v.ElementIterator(); it.Next(); {
		if _, e := it.Element(); e.IsNull() {
			return true
		}
	}
	return false
}

func ctyType(t reflect.Type) cty.Type {
	switch t.Kind() {
	case reflect.String, reflect.Struct: // Duration is written as a string
		return cty.String
	case reflect.Int, reflect.Float64:
		return cty.Number
	case reflect.Bool:
		return cty.Bool
	case reflect.Slice:
		return cty.List(cty.String)
	case reflect.Map:
		return cty.Map(cty.String)
	}
	panic("config: unsupported schema type " + t.String())
}

func friendlyType(t cty.Type) string {
	switch {
	case t == cty.String:
		return "a string"
	case t == cty.Number:
		return "a number"
	case t == cty.Bool:
		return "a bool"
	case t.IsTupleType() || t.IsListType():
		return "a list"
	case t.IsObjectType() || t.IsMapType():
		return "a map"
	}
	return t.FriendlyName()
}

func example(f field) string {
	switch {
	case f.Type == reflect.TypeOf(Duration{}):
		return fmt.Sprintf(`%s = "30s"`, f.Name)
	case f.Type.Kind() == reflect.String:
		if len(f.Enum) > 0 {
			return fmt.Sprintf("%s = %q", f.Name, f.Enum[0])
		}
		return fmt.Sprintf(`%s = "text"`, f.Name)
	case f.Type.Kind() == reflect.Int:
		return fmt.Sprintf("%s = 3", f.Name)
	case f.Type.Kind() == reflect.Float64:
		return fmt.Sprintf("%s = 0.5", f.Name)
	case f.Type.Kind() == reflect.Bool:
		return fmt.Sprintf("%s = true", f.Name)
	case f.Type.Kind() == reflect.Slice:
		return fmt.Sprintf(`%s = ["a", "b"]`, f.Name)
	case f.Type.Kind() == reflect.Map:
		return fmt.Sprintf(`%s = { KEY = "value" }`, f.Name)
	}
	return ""
}

func unknownAttr(a *hclsyntax.Attribute, t reflect.Type, where string, isBlock bool) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Subject: a.NameRange.Ptr()}
	if isBlock {
		d.Summary = fmt.Sprintf("%s is a block, not an argument", a.Name)
		d.Detail = fmt.Sprintf("Write %s as a block: `%s { ... }` (without `=`).", a.Name, a.Name)
		return d
	}
	d.Summary = fmt.Sprintf("Unsupported argument %q", a.Name)
	d.Detail = fmt.Sprintf("An argument named %q is not expected in %s.", a.Name, where)
	if s := suggest(a.Name, names(t, false)); s != "" {
		d.Detail += fmt.Sprintf(" Did you mean %q?", s)
	} else if len(names(t, false)) > 0 {
		d.Detail += " Arguments here: " + strings.Join(names(t, false), ", ") + "."
	}
	return d
}

func unknownBlock(b *hclsyntax.Block, t reflect.Type, where string, isAttr, allowEnv bool) *hcl.Diagnostic {
	d := &hcl.Diagnostic{Severity: hcl.DiagError, Subject: b.TypeRange.Ptr()}
	if isAttr {
		d.Summary = fmt.Sprintf("%s is an argument, not a block", b.Type)
		d.Detail = fmt.Sprintf("Write `%s = value` instead of a block.", b.Type)
		return d
	}
	cands := names(t, true)
	if allowEnv {
		cands = append(cands, "environment")
	}
	d.Summary = fmt.Sprintf("Unsupported block type %q", b.Type)
	d.Detail = fmt.Sprintf("Blocks of type %q are not expected in %s.", b.Type, where)
	if b.Type == "environment" && !allowEnv {
		d.Detail += " Environment overrides go directly inside the service block and cannot be nested."
	} else if s := suggest(b.Type, cands); s != "" {
		d.Detail += fmt.Sprintf(" Did you mean %q?", s)
	} else if len(cands) > 0 {
		d.Detail += " Blocks here: " + strings.Join(cands, ", ") + "."
	}
	return d
}

func labelDiag(b *hclsyntax.Block, typ, what, ex string) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("%s block needs exactly one label", typ),
		Detail:   fmt.Sprintf("A %s block takes %s as its only label, such as `%s`.", typ, what, ex),
		Subject:  b.DefRange().Ptr(),
	}
}

func dupBlock(b *hclsyntax.Block, what string, prev hcl.Range) *hcl.Diagnostic {
	return &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  fmt.Sprintf("Duplicate %s block", what),
		Detail:   fmt.Sprintf("%s was already defined at %s. Merge the two blocks into one.", what, prev),
		Subject:  b.DefRange().Ptr(),
	}
}
