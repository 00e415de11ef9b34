package iac

import (
	"fmt"
	"sort"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// expr returns the tokens of an HCL expression written as source. Only
// expressions built by this package from validated names go through it;
// values that come from the user are written with cty values instead.
func expr(src string) hclwrite.Tokens {
	f, diags := hclwrite.ParseConfig([]byte("x = "+src+"\n"), "expr", hcl.InitialPos)
	if diags.HasErrors() {
		// A bug in a generator, never a user's input: fail loudly in tests.
		panic(fmt.Sprintf("iac: bad generated expression %q: %s", src, diags.Error()))
	}
	return f.Body().GetAttribute("x").Expr().BuildTokens(nil)
}

// setExpr sets an attribute to an expression given as source.
func setExpr(b *hclwrite.Body, name, src string) { b.SetAttributeRaw(name, expr(src)) }

func setString(b *hclwrite.Body, name, v string) { b.SetAttributeValue(name, cty.StringVal(v)) }

// stringMap is a map of strings in key order (cty sorts object keys).
func stringMap(m map[string]string) cty.Value {
	if len(m) == 0 {
		return cty.MapValEmpty(cty.String)
	}
	vals := map[string]cty.Value{}
	for k, v := range m {
		vals[k] = cty.StringVal(v)
	}
	return cty.ObjectVal(vals)
}

func stringList(vs []string) cty.Value {
	if len(vs) == 0 {
		return cty.ListValEmpty(cty.String)
	}
	out := make([]cty.Value, len(vs))
	for i, v := range vs {
		out[i] = cty.StringVal(v)
	}
	return cty.TupleVal(out)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// variable appends a variable block with a description, a type and an
// optional default.
func variable(b *hclwrite.Body, name, typ, description string, def *cty.Value) {
	vb := b.AppendNewBlock("variable", []string{name}).Body()
	setString(vb, "description", description)
	setExpr(vb, "type", typ)
	if def != nil {
		vb.SetAttributeValue("default", *def)
	}
}

func output(b *hclwrite.Body, name, description, value string) {
	ob := b.AppendNewBlock("output", []string{name}).Body()
	setString(ob, "description", description)
	setExpr(ob, "value", value)
}

func ptr(v cty.Value) *cty.Value { return &v }
