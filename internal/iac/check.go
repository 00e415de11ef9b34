package iac

import (
	"path"
	"regexp"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Rules of Check, by name.
const (
	RuleOpenIngress     = "open-ingress"
	RuleBucketEncrypted = "bucket-encryption"
	RuleLogEncrypted    = "log-encryption"
	RuleBackend         = "state-backend"
	RulePlaintextSecret = "plaintext-secret"
)

// Check runs the static rules over .tf files (generated and hand-written),
// keyed by slash path: no security group open to the world except on 80 and
// 443, encrypted buckets and log groups, a state backend in every root, no
// secret written as a literal. A directory is a root unless a path element
// is named "modules".
func Check(files map[string][]byte) []Finding {
	mods, out := parseModules(files)
	for _, dir := range sortedKeys(mods) {
		m := mods[dir]
		out = append(out, checkBackend(m)...)
		out = append(out, checkBuckets(m)...)
		for _, body := range m.bodies {
			for _, b := range body.Blocks {
				out = append(out, checkResource(b)...)
				out = append(out, checkSecrets(b)...)
			}
		}
	}
	sortFindings(out)
	return out
}

func isModuleDir(dir string) bool {
	for _, p := range strings.Split(dir, "/") {
		if p == "modules" {
			return true
		}
	}
	return false
}

func checkBackend(m *moduleInfo) []Finding {
	if isModuleDir(m.dir) || len(m.bodies) == 0 {
		return nil
	}
	for _, body := range m.bodies {
		for _, b := range body.Blocks {
			if b.Type != "terraform" {
				continue
			}
			for _, nb := range b.Body.Blocks {
				if nb.Type == "backend" || nb.Type == "cloud" {
					return nil
				}
			}
		}
	}
	return []Finding{finding(m.bodies[0].SrcRange, RuleBackend,
		"root %s configures no state backend: its state would stay on one machine; add terraform { backend \"s3\" { ... } }", m.dir)}
}

// checkBuckets wants every aws_s3_bucket to have a server-side encryption
// configuration that references it (or the older inline block).
func checkBuckets(m *moduleInfo) []Finding {
	encrypted := map[string]bool{}
	var buckets []*hclsyntax.Block
	for _, body := range m.bodies {
		for _, b := range body.Blocks {
			if b.Type != "resource" || len(b.Labels) != 2 {
				continue
			}
			switch b.Labels[0] {
			case "aws_s3_bucket":
				buckets = append(buckets, b)
				for _, nb := range b.Body.Blocks {
					if nb.Type == "server_side_encryption_configuration" {
						encrypted[b.Labels[1]] = true
					}
				}
			case "aws_s3_bucket_server_side_encryption_configuration":
				if a, ok := b.Body.Attributes["bucket"]; ok {
					for _, t := range a.Expr.Variables() {
						if t.RootName() == "aws_s3_bucket" && len(t) > 1 {
							if s, ok := t[1].(hcl.TraverseAttr); ok {
								encrypted[s.Name] = true
							}
						}
					}
				}
			}
		}
	}
	var out []Finding
	for _, b := range buckets {
		if !encrypted[b.Labels[1]] {
			out = append(out, finding(b.DefRange(), RuleBucketEncrypted,
				"bucket aws_s3_bucket.%s has no aws_s3_bucket_server_side_encryption_configuration", b.Labels[1]))
		}
	}
	return out
}

func checkResource(b *hclsyntax.Block) []Finding {
	if b.Type != "resource" || len(b.Labels) != 2 {
		return nil
	}
	name := b.Labels[0] + "." + b.Labels[1]
	var out []Finding
	switch b.Labels[0] {
	case "aws_cloudwatch_log_group":
		if _, ok := b.Body.Attributes["kms_key_id"]; !ok {
			out = append(out, finding(b.DefRange(), RuleLogEncrypted, "log group %s sets no kms_key_id", name))
		}
	case "aws_security_group":
		for _, nb := range b.Body.Blocks {
			if nb.Type == "ingress" {
				out = append(out, checkIngress(name, nb.Body, nb.DefRange())...)
			}
		}
	case "aws_security_group_rule":
		if s, ok := literalString(b.Body, "type"); ok && s == "ingress" {
			out = append(out, checkIngress(name, b.Body, b.DefRange())...)
		}
	case "aws_vpc_security_group_ingress_rule":
		out = append(out, checkIngress(name, b.Body, b.DefRange())...)
	}
	return out
}

// webPorts may be open to the world: the load balancer's HTTP and HTTPS.
var webPorts = map[int64]bool{80: true, 443: true}

func checkIngress(name string, body *hclsyntax.Body, r hcl.Range) []Finding {
	world := false
	for _, attr := range []string{"cidr_blocks", "ipv6_cidr_blocks", "cidr_ipv4", "cidr_ipv6"} {
		a, ok := body.Attributes[attr]
		if !ok {
			continue
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || !v.IsWhollyKnown() {
			continue
		}
		var vals []cty.Value
		if v.Type() == cty.String {
			vals = []cty.Value{v}
		} else if v.CanIterateElements() {
			for it := v.ElementIterator(); it.Next(); {
				_, ev := it.Element()
				vals = append(vals, ev)
			}
		}
		for _, ev := range vals {
			if ev.Type() == cty.String && !ev.IsNull() && (ev.AsString() == "0.0.0.0/0" || ev.AsString() == "::/0") {
				world = true
			}
		}
	}
	if !world {
		return nil
	}
	from, ok1 := literalInt(body, "from_port")
	to, ok2 := literalInt(body, "to_port")
	if ok1 && ok2 && from == to && webPorts[from] {
		return nil
	}
	ports := "all ports"
	if ok1 && ok2 {
		ports = "ports " + itoa(from) + "-" + itoa(to)
	}
	return []Finding{finding(r, RuleOpenIngress, "%s allows %s from anywhere; only a load balancer's 80 and 443 may be open to 0.0.0.0/0", name, ports)}
}

func itoa(v int64) string {
	return cty.NumberIntVal(v).AsBigFloat().Text('f', 0)
}

func literalString(b *hclsyntax.Body, name string) (string, bool) {
	a, ok := b.Attributes[name]
	if !ok {
		return "", false
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
		return "", false
	}
	return v.AsString(), true
}

func literalInt(b *hclsyntax.Body, name string) (int64, bool) {
	a, ok := b.Attributes[name]
	if !ok {
		return 0, false
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() || v.Type() != cty.Number || v.IsNull() || !v.IsKnown() {
		return 0, false
	}
	i, acc := v.AsBigFloat().Int64()
	return i, acc == 0
}

// secretName matches attribute and variable names that hold secret values.
var secretName = regexp.MustCompile(`(?i)(^|_)(password|passwd|secret|secret_string|secret_key|access_key|private_key|api_key|token)$`)

// checkSecrets flags secret-named attributes set to a literal string and
// secret-named variables with a literal default.
func checkSecrets(b *hclsyntax.Block) []Finding {
	if b.Type == "variable" {
		if len(b.Labels) == 1 && secretName.MatchString(b.Labels[0]) {
			if a, ok := b.Body.Attributes["default"]; ok {
				if s, ok := literal(a.Expr); ok && s != "" {
					return []Finding{finding(a.SrcRange, RulePlaintextSecret,
						"variable %q has a secret default in plain text; pass it at plan time instead", b.Labels[0])}
				}
			}
		}
		return nil
	}
	var out []Finding
	for _, name := range sortedKeys(b.Body.Attributes) {
		a := b.Body.Attributes[name]
		if !secretName.MatchString(name) {
			continue
		}
		if s, ok := literal(a.Expr); ok && s != "" {
			out = append(out, finding(a.SrcRange, RulePlaintextSecret,
				"%s is written in plain text; read it from a secret store (a variable marked sensitive, or Secrets Manager)", name))
		}
	}
	for _, nb := range b.Body.Blocks {
		out = append(out, checkSecrets(nb)...)
	}
	return out
}

// literal returns the value of a string expression without references.
func literal(e hclsyntax.Expression) (string, bool) {
	if len(e.Variables()) > 0 {
		return "", false
	}
	switch e.(type) {
	case *hclsyntax.TemplateExpr, *hclsyntax.LiteralValueExpr, *hclsyntax.TemplateWrapExpr:
	default:
		return "", false // function calls such as file() or random values
	}
	v, diags := e.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String || v.IsNull() || !v.IsKnown() {
		return "", false
	}
	return v.AsString(), true
}

// RootDirs returns the directories of files that are roots (not modules).
func RootDirs(files map[string][]byte) []string {
	seen := map[string]bool{}
	for p := range files {
		if d := path.Dir(p); !isModuleDir(d) {
			seen[d] = true
		}
	}
	return sortedKeys(seen)
}
