package config

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
)

// Flatten renders a JSON document (a resolved manifest, a project) as sorted
// "path = value" lines, such as `scale.desired = 3` or
// `deploy.canary.steps[0].weight = 10`; lists of strings stay on one line.
func Flatten(doc []byte) []string {
	var v any
	if json.Unmarshal(doc, &v) != nil {
		return nil
	}
	var out []string
	flatten("", v, &out)
	return out
}

func flatten(prefix string, v any, out *[]string) {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			flatten(p, x[k], out)
		}
	case []any:
		if len(x) > 0 && reflect.TypeOf(x[0]) != nil && reflect.TypeOf(x[0]).Kind() == reflect.String {
			b, _ := json.Marshal(x)
			*out = append(*out, fmt.Sprintf("%s = %s", prefix, b))
			return
		}
		for i, e := range x {
			// Named elements (environments, alarms, ...) by name, so a
			// diff says which one changed, not its position.
			key := fmt.Sprintf("%d", i)
			if m, ok := e.(map[string]any); ok {
				if n, ok := m["name"].(string); ok && n != "" {
					key = n
				}
			}
			flatten(fmt.Sprintf("%s[%s]", prefix, key), e, out)
		}
	default:
		b, _ := json.Marshal(x)
		*out = append(*out, fmt.Sprintf("%s = %s", prefix, strings.ReplaceAll(string(b), `\u003e`, ">")))
	}
}

// Diff lists what changed between two JSON documents, field by field, as
// "+ path = new", "- path = old" and "~ path: old → new" lines sorted by
// path; paths listed in skip (top-level keys such as "dir") are left out.
// The CLI shows it before a deploy, the server names a runway.hcl that
// differs from its copy with it.
func Diff(old, next []byte, skip ...string) []string {
	oldFlat, newFlat := flatMap(old), flatMap(next)
	keys := map[string]bool{}
	for k := range newFlat {
		keys[k] = true
	}
	for k := range oldFlat {
		keys[k] = true
	}
	var out []string
	for k := range keys {
		if top, _, _ := strings.Cut(k, "."); contains(skip, top) || contains(skip, k) {
			continue
		}
		o, n := oldFlat[k], newFlat[k]
		switch {
		case o == n:
		case o == "":
			out = append(out, fmt.Sprintf("+ %s = %s", k, n))
		case n == "":
			out = append(out, fmt.Sprintf("- %s = %s", k, o))
		default:
			out = append(out, fmt.Sprintf("~ %s: %s → %s", k, o, n))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i][2:] < out[j][2:] })
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func flatMap(b []byte) map[string]string {
	out := map[string]string{}
	for _, l := range Flatten(b) {
		k, val, _ := strings.Cut(l, " = ")
		out[k] = val
	}
	return out
}
