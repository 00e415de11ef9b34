package netplan

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
)

// LockFileName is the lock file's name, next to runway.hcl.
const LockFileName = "runway.lock.hcl"

const lockHeader = `# runway.lock.hcl: address allocations recorded by Runway (runway netplan,
# runway infra generate). Commit this file: a range recorded here never moves.
# Removing a block releases its ranges for the next allocation.
`

// Bytes renders the lock as HCL, one region block per environment-region with
// its zones nested, sorted, so that a rerun writes the same bytes.
func (l *Lock) Bytes() []byte {
	f := hclwrite.NewEmptyFile()
	body := f.Body()
	keys := l.Keys()
	first := true
	for _, k := range keys {
		if strings.Count(k, "/") != 1 {
			continue
		}
		if !first {
			body.AppendNewline()
		}
		first = false
		rb := body.AppendNewBlock("region", []string{k}).Body()
		rb.SetAttributeValue("cidr", cty.StringVal(l.Get(k).String()))
		for _, zk := range keys {
			if strings.Count(zk, "/") != 2 || parentKey(zk) != k {
				continue
			}
			rb.AppendNewline()
			zb := rb.AppendNewBlock("zone", []string{zk[len(k)+1:]}).Body()
			zb.SetAttributeValue("cidr", cty.StringVal(l.Get(zk).String()))
			// Subnets in address order, which is their allocation order.
			var subs []string
			for _, sk := range keys {
				if strings.Count(sk, "/") == 3 && parentKey(sk) == zk {
					subs = append(subs, sk)
				}
			}
			sortByAddr(subs, l)
			for _, sk := range subs {
				zb.SetAttributeValue(sk[len(zk)+1:], cty.StringVal(l.Get(sk).String()))
			}
		}
	}
	return append([]byte(lockHeader+"\n"), hclwrite.Format(f.Bytes())...)
}

func sortByAddr(keys []string, l *Lock) {
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && l.Get(keys[j]).Addr().Less(l.Get(keys[j-1]).Addr()); j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
}

// ParseLock reads a lock file. filename is used in error messages only. The
// input is untrusted (a file in a repository): every problem is an error with
// its file:line, never a panic.
func ParseLock(src []byte, filename string) (*Lock, error) {
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("read %s: %s", filename, diags.Error())
	}
	body, ok := f.Body.(*hclsyntax.Body)
	if !ok {
		return nil, fmt.Errorf("read %s: not native HCL syntax", filename)
	}
	l := &Lock{}
	if len(body.Attributes) > 0 {
		for _, a := range body.Attributes {
			return nil, lockErr(a.SrcRange, "unexpected attribute %q; only region blocks belong at the top level", a.Name)
		}
	}
	for _, rb := range body.Blocks {
		if rb.Type != "region" || len(rb.Labels) != 1 {
			return nil, lockErr(rb.TypeRange, "unexpected block %q; want region \"<environment>/<region>\"", rb.Type)
		}
		rk := rb.Labels[0]
		if err := checkKey(rk, 2); err != nil {
			return nil, lockErr(rb.LabelRanges[0], "region label: %v", err)
		}
		if err := lockAttrs(l, rb.Body, rk, false); err != nil {
			return nil, err
		}
		for _, zb := range rb.Body.Blocks {
			if zb.Type != "zone" || len(zb.Labels) != 1 {
				return nil, lockErr(zb.TypeRange, "unexpected block %q; want zone \"<zone>\"", zb.Type)
			}
			if err := checkKey(zb.Labels[0], 1); err != nil {
				return nil, lockErr(zb.LabelRanges[0], "zone label: %v", err)
			}
			if len(zb.Body.Blocks) > 0 {
				return nil, lockErr(zb.Body.Blocks[0].TypeRange, "unexpected block %q in a zone", zb.Body.Blocks[0].Type)
			}
			if err := lockAttrs(l, zb.Body, rk+"/"+zb.Labels[0], true); err != nil {
				return nil, err
			}
		}
	}
	return l, nil
}

// lockAttrs reads cidr (and, in zones, one attribute per tier).
func lockAttrs(l *Lock, b *hclsyntax.Body, key string, tiers bool) error {
	if _, ok := b.Attributes["cidr"]; !ok {
		return lockErr(b.SrcRange, "%s has no cidr", key)
	}
	for name, a := range b.Attributes {
		k := key
		if name != "cidr" {
			if !tiers {
				return lockErr(a.SrcRange, "unexpected attribute %q; a region holds cidr and zone blocks", name)
			}
			k = key + "/" + name
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.IsNull() || !v.IsKnown() || v.Type() != cty.String {
			return lockErr(a.SrcRange, "%s must be a quoted CIDR range", name)
		}
		p, err := netip.ParsePrefix(v.AsString())
		if err != nil || !p.Addr().Is4() || p.Masked() != p {
			return lockErr(a.SrcRange, "%s = %q is not an IPv4 network range", name, v.AsString())
		}
		if l.Get(k).IsValid() {
			return lockErr(a.SrcRange, "%s is recorded twice", k)
		}
		l.Set(k, p)
	}
	return nil
}

func checkKey(k string, parts int) error {
	ps := strings.Split(k, "/")
	if len(ps) != parts {
		return fmt.Errorf("%q: want %d part(s) separated by /", k, parts)
	}
	for _, p := range ps {
		if p == "" || strings.ContainsAny(p, " \t\r\n") {
			return fmt.Errorf("%q: empty or blank part", k)
		}
	}
	return nil
}

func lockErr(r hcl.Range, format string, args ...any) error {
	return fmt.Errorf("%s:%d: %s", r.Filename, r.Start.Line, fmt.Sprintf(format, args...))
}
