package config

import (
	"reflect"
	"sort"
	"strings"
	"sync"
)

// fieldKind is how a struct field appears in HCL.
type fieldKind int

const (
	kindAttr     fieldKind = iota // an argument: name = value
	kindLabel                     // the block's label
	kindBlock                     // a block that appears at most once (struct)
	kindOptBlock                  // a block that may be absent (*struct)
	kindBlocks                    // a repeated block ([]*struct)
)

// field describes one schema field, read from struct tags.
type field struct {
	Name       string
	Index      int
	Kind       fieldKind
	Type       reflect.Type // attribute type, or the struct type of a block
	Default    string       // HCL expression
	DefaultDoc string
	Doc        string
	Enum       []string
	Required   bool
	// Planned says why a block is accepted but not acted on yet (the
	// `planned` tag); docs mark it and validate warns where it is used.
	Planned string
	// MapTo names the map attribute that a map written in this list
	// attribute's place stands for (the `mapto` tag): `secrets = { VAR =
	// "KEY" }` is `secret_env = { VAR = "KEY" }`.
	MapTo string
}

// labelled reports whether blocks of this field carry a label.
func (f field) labelled() bool {
	for _, c := range fieldsOf(f.Type) {
		if c.Kind == kindLabel {
			return true
		}
	}
	return false
}

var fieldCache sync.Map // reflect.Type -> []field

// fieldsOf returns the schema fields of a struct type in declaration order.
func fieldsOf(t reflect.Type) []field {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if v, ok := fieldCache.Load(t); ok {
		return v.([]field)
	}
	var out []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag, ok := sf.Tag.Lookup("hcl")
		if !ok {
			continue
		}
		name, opt, _ := strings.Cut(tag, ",")
		f := field{
			Name:       name,
			Index:      i,
			Type:       sf.Type,
			Default:    sf.Tag.Get("default"),
			DefaultDoc: sf.Tag.Get("defaultdoc"),
			Doc:        sf.Tag.Get("doc"),
			Required:   sf.Tag.Get("required") == "true",
			Planned:    sf.Tag.Get("planned"),
			MapTo:      sf.Tag.Get("mapto"),
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, "|")
		}
		switch {
		case opt == "label":
			f.Kind = kindLabel
		case opt == "block" && sf.Type.Kind() == reflect.Struct:
			f.Kind = kindBlock
		case opt == "block" && sf.Type.Kind() == reflect.Pointer:
			f.Kind, f.Type = kindOptBlock, sf.Type.Elem()
		case opt == "block" && sf.Type.Kind() == reflect.Slice:
			f.Kind, f.Type = kindBlocks, sf.Type.Elem().Elem()
		default:
			f.Kind = kindAttr
		}
		out = append(out, f)
	}
	fieldCache.Store(t, out)
	return out
}

// lookupField finds a field by HCL name.
func lookupField(t reflect.Type, name string) (field, bool) {
	for _, f := range fieldsOf(t) {
		if f.Name == name && f.Kind != kindLabel {
			return f, true
		}
	}
	return field{}, false
}

// names returns the attribute or block names of a struct type, sorted.
func names(t reflect.Type, blocks bool) []string {
	var out []string
	for _, f := range fieldsOf(t) {
		if f.Kind == kindLabel {
			continue
		}
		if (f.Kind != kindAttr) == blocks {
			out = append(out, f.Name)
		}
	}
	sort.Strings(out)
	return out
}

// typeName describes an attribute type for humans.
func typeName(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(Duration{}):
		return "duration"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int:
		return "whole number"
	case t.Kind() == reflect.Float64:
		return "number"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() == reflect.Slice:
		return "list of strings"
	case t.Kind() == reflect.Map:
		return "map of strings"
	}
	return t.String()
}

// suggest returns the candidate closest to s, if it is close enough to be a likely typo.
func suggest(s string, candidates []string) string {
	best, bestD := "", len(s)/2+2
	for _, c := range candidates {
		if len(s) >= 3 && strings.HasPrefix(c, s) {
			return c
		}
	}
	for _, c := range candidates {
		if d := levenshtein(s, c); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
