package config

import (
	"fmt"
	"reflect"
	"strings"
)

// ServiceScaffold returns a service manifest for name that sets command
// (or image) and shows every other field commented out with its meaning
// and default, so a user can discover and switch on what they need.
func ServiceScaffold(name string, command []string, image string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "# Service manifest of %s. Reference: docs/manifest.md (runway docs manifest).\n", name)
	b.WriteString("# Lines starting with # show each setting with its default; uncomment to change one.\n")
	fmt.Fprintf(&b, "service %q {\n", name)
	set := map[string]string{}
	if len(command) > 0 {
		set["command"] = hclList(command)
	}
	if image != "" {
		set["image"] = fmt.Sprintf("%q", image)
	}
	set["version"] = `"0.1.0"`
	scaffoldBody(&b, reflect.TypeOf(Service{}), "  ", false, set)
	b.WriteString("\n  # Overrides for one environment of runway.hcl, deep-merged over the settings above:\n")
	b.WriteString("  # environment \"production\" {\n  #   scale {\n  #     desired = 4\n  #   }\n  # }\n")
	b.WriteString("}\n")
	return []byte(b.String())
}

func scaffoldBody(b *strings.Builder, t reflect.Type, indent string, commented bool, set map[string]string) {
	c := ""
	if commented {
		c = "# "
	}
	for _, f := range fieldsOf(t) {
		switch f.Kind {
		case kindLabel:
			continue
		case kindAttr:
			b.WriteString("\n")
			writeComment(b, indent, f)
			if v, ok := set[f.Name]; ok {
				fmt.Fprintf(b, "%s%s%s = %s\n", indent, c, f.Name, v)
				continue
			}
			val := f.Default
			if f.Required {
				val = strings.TrimPrefix(example(f), f.Name+" = ")
			}
			fmt.Fprintf(b, "%s# %s = %s\n", indent, f.Name, val)
		default:
			b.WriteString("\n")
			fmt.Fprintf(b, "%s# %s\n", indent, f.Doc)
			inner := commented || f.Kind != kindBlock
			ic := c
			if inner {
				ic = "# "
			}
			head := f.Name
			if f.labelled() {
				head += ` "example"`
			}
			fmt.Fprintf(b, "%s%s%s {\n", indent, ic, head)
			scaffoldBody(b, f.Type, indent+"  ", inner, nil)
			fmt.Fprintf(b, "%s%s}\n", indent, ic)
		}
	}
}

func writeComment(b *strings.Builder, indent string, f field) {
	def := f.Default
	switch {
	case f.Required:
		def = "required"
	case f.DefaultDoc != "":
		def = f.DefaultDoc
	}
	doc := f.Doc
	if len(f.Enum) > 0 {
		doc += " One of: " + strings.Join(f.Enum, ", ") + "."
	}
	fmt.Fprintf(b, "%s# %s (default: %s)\n", indent, doc, def)
}

func hclList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// ProjectScaffold returns a runway.hcl for a new project with development,
// staging and production environments on this machine.
func ProjectScaffold(name string) []byte {
	return []byte(fmt.Sprintf(`# The Runway project. Reference: docs/manifest.md (runway docs manifest).
project %q {
  # DNS domain services live under; without it they live at <service>.<environment>.localhost.
  # domain = "example.com"
}

# Where releases go. target: local (processes on this machine), docker, kubernetes or aws.
environment "development" {
  target = "local"
}

environment "staging" {
  target = "local"
}

environment "production" {
  target    = "local"
  protected = true
}

# The private address space environments are planned in (runway netplan).
network {
  ip_space = "10.0.0.0/8"
}

# A channel alarms and releases notify.
# notify "ops" {
#   webhook = "https://hooks.example.com/T000/B000"
# }
`, name))
}
