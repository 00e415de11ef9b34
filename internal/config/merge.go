package config

import (
	"maps"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// merge returns base with over deep-merged on top: scalars and lists
// replace, maps merge key by key, blocks merge field by field (labelled
// blocks by label; repeated unlabelled blocks such as canary steps replace
// the whole list). Neither input is modified.
func merge(base, over *node) *node {
	if base == nil {
		return over
	}
	if over == nil {
		return base
	}
	out := &node{
		typ: base.typ, label: base.label, labelRng: base.labelRng, defRng: base.defRng,
		attrs:  maps.Clone(base.attrs),
		blocks: maps.Clone(base.blocks),
	}
	for name, a := range over.attrs {
		if prev, ok := out.attrs[name]; ok && a.val.Type().IsMapType() {
			out.attrs[name] = mergeMaps(prev, a)
			continue
		}
		out.attrs[name] = a
	}
	for name, list := range over.blocks {
		f, _ := lookupField(base.typ, name)
		prev := out.blocks[name]
		switch {
		case f.Kind == kindBlocks && f.labelled():
			merged := append([]*node(nil), prev...)
			for _, o := range list {
				found := false
				for i, p := range merged {
					if p.label == o.label {
						merged[i], found = merge(p, o), true
					}
				}
				if !found {
					merged = append(merged, o)
				}
			}
			out.blocks[name] = merged
		case f.Kind == kindBlocks:
			out.blocks[name] = list
		default:
			var p *node
			if len(prev) > 0 {
				p = prev[0]
			}
			out.blocks[name] = []*node{merge(p, list[0])}
		}
	}
	return out
}

func mergeMaps(base, over *attrVal) *attrVal {
	m := map[string]cty.Value{}
	rngs := map[string]hcl.Range{}
	for it := base.val.ElementIterator(); it.Next(); {
		k, v := it.Element()
		m[k.AsString()] = v
	}
	maps.Copy(rngs, base.keyRngs)
	for it := over.val.ElementIterator(); it.Next(); {
		k, v := it.Element()
		m[k.AsString()] = v
	}
	maps.Copy(rngs, over.keyRngs)
	for k := range m {
		if _, ok := rngs[k]; !ok {
			rngs[k] = over.rng
		}
	}
	val := cty.MapValEmpty(cty.String)
	if len(m) > 0 {
		val = cty.MapVal(m)
	}
	return &attrVal{val: val, rng: over.rng, keyRngs: rngs}
}
