package awsfake

import (
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed models/*.json
var modelFiles embed.FS

// Shape is one shape of an API model (models/*.min.json): a structure, list,
// map or scalar, with the members, required members and XML names the
// protocols need.
type Shape struct {
	Type         string // structure, list, map, string, integer, long, double, float, boolean, timestamp, blob
	Members      map[string]*Shape
	Required     []string
	Member       *Shape // list
	Key, Value   *Shape // map
	Flattened    bool
	LocationName string
	// Name is the member name this shape was reached by ("" at the top).
	Name string
}

// Operation is one operation of a model.
type Operation struct {
	Name          string
	Input, Output *Shape
	ResultWrapper string // query protocol: the XML element wrapping the output
}

// Model is one service's API model.
type Model struct {
	Service      string // ecs, elasticloadbalancingv2, monitoring, logs, sts
	Protocol     string
	TargetPrefix string // JSON protocol: X-Amz-Target prefix
	APIVersion   string
	XMLNamespace string
	Operations   map[string]*Operation
	// Enums are the values of members by member name, from the Go SDK;
	// Ranges the numeric bounds from the AWS API reference (enums.go).
	Enums  map[string][]string
	Ranges map[string][2]float64
}

type rawShape struct {
	Shape          string               `json:"shape"`
	Type           string               `json:"type"`
	Members        map[string]*rawShape `json:"members"`
	Required       []string             `json:"required"`
	Member         *rawShape            `json:"member"`
	Key            *rawShape            `json:"key"`
	Value          *rawShape            `json:"value"`
	Flattened      bool                 `json:"flattened"`
	LocationName   string               `json:"locationName"`
	ResultWrapper  string               `json:"resultWrapper"`
	TimestampFmt   string               `json:"timestampFormat"`
	Location       string               `json:"location"`
	EventStream    bool                 `json:"eventstream"`
	Exception      bool                 `json:"exception"`
	XMLNamespace   any                  `json:"xmlNamespace"`
	Deprecated     bool                 `json:"deprecated"`
	Sensitive      bool                 `json:"sensitive"`
	Box            bool                 `json:"box"`
	Streaming      bool                 `json:"streaming"`
	IdempotencyTok bool                 `json:"idempotencyToken"`
}

type rawModel struct {
	Metadata struct {
		APIVersion   string `json:"apiVersion"`
		Protocol     string `json:"protocol"`
		TargetPrefix string `json:"targetPrefix"`
		XMLNamespace string `json:"xmlNamespace"`
	} `json:"metadata"`
	Operations map[string]struct {
		Input  *rawShape `json:"input"`
		Output *rawShape `json:"output"`
	} `json:"operations"`
	Shapes map[string]*rawShape `json:"shapes"`
}

// LoadModel reads the embedded model of service (the file name's prefix:
// "ecs", "elasticloadbalancingv2", "monitoring", "logs", "sts").
func LoadModel(service string) (*Model, error) {
	entries, err := modelFiles.ReadDir("models")
	if err != nil {
		return nil, err
	}
	var file string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), service+"-") && strings.HasSuffix(e.Name(), ".min.json") {
			file = "models/" + e.Name()
		}
	}
	if file == "" {
		return nil, fmt.Errorf("no model of service %q", service)
	}
	data, err := modelFiles.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var raw rawModel
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("model %s: %w", file, err)
	}
	m := &Model{Service: service, Protocol: raw.Metadata.Protocol, TargetPrefix: raw.Metadata.TargetPrefix,
		APIVersion: raw.Metadata.APIVersion, XMLNamespace: raw.Metadata.XMLNamespace, Operations: map[string]*Operation{},
		Enums: enums[service], Ranges: ranges[service]}
	r := resolver{raw: raw.Shapes, done: map[string]*Shape{}}
	for name, op := range raw.Operations {
		o := &Operation{Name: name}
		if op.Input != nil {
			o.Input = r.shape(op.Input, "")
		} else {
			o.Input = &Shape{Type: "structure", Members: map[string]*Shape{}}
		}
		if op.Output != nil {
			o.Output = r.shape(op.Output, "")
			o.ResultWrapper = op.Output.ResultWrapper
		} else {
			o.Output = &Shape{Type: "structure", Members: map[string]*Shape{}}
		}
		m.Operations[name] = o
	}
	return m, nil
}

// resolver turns raw shapes into Shapes; named shapes are resolved once, so
// recursive shapes share pointers.
type resolver struct {
	raw  map[string]*rawShape
	done map[string]*Shape
}

func (r *resolver) shape(rs *rawShape, name string) *Shape {
	if rs.Shape != "" {
		base, ok := r.done[rs.Shape]
		if !ok {
			base = &Shape{}
			r.done[rs.Shape] = base
			*base = *r.shape(r.raw[rs.Shape], "")
		}
		if name == "" && rs.LocationName == "" && !rs.Flattened {
			return base
		}
		// A member reference may add its own XML name; the structure is
		// shared.
		c := *base
		c.Name = name
		if rs.LocationName != "" {
			c.LocationName = rs.LocationName
		}
		c.Flattened = c.Flattened || rs.Flattened
		return &c
	}
	s := &Shape{Type: rs.Type, Required: rs.Required, Flattened: rs.Flattened, LocationName: rs.LocationName, Name: name}
	if s.Type == "" {
		s.Type = "string"
	}
	if rs.Members != nil || s.Type == "structure" {
		s.Members = map[string]*Shape{}
		for n, ms := range rs.Members {
			s.Members[n] = r.shape(ms, n)
		}
	}
	if rs.Member != nil {
		s.Member = r.shape(rs.Member, name)
	}
	if rs.Key != nil {
		s.Key = r.shape(rs.Key, "key")
	}
	if rs.Value != nil {
		s.Value = r.shape(rs.Value, name)
	}
	return s
}

// Violations is what a model refused in one value, one line per problem,
// each naming the member's path.
type Violations []string

func (v Violations) Error() string { return strings.Join(v, "; ") }

// Conform checks raw (decoded from JSON, a query string or CBOR) against s
// and returns it typed: map[string]any for structures and maps, []any for
// lists, string, int64, float64, bool, time.Time, []byte. Every problem is
// added to errs: an unknown member, a missing required member, a value of
// the wrong type, an enum value the Go SDK does not list, a number out of
// the API reference's range.
func (m *Model) Conform(s *Shape, raw any, path string, errs *Violations) any {
	if raw == nil {
		return nil
	}
	bad := func(format string, a ...any) any {
		*errs = append(*errs, fmt.Sprintf("%s: %s", orTop(path), fmt.Sprintf(format, a...)))
		return nil
	}
	switch s.Type {
	case "structure":
		in, ok := raw.(map[string]any)
		if !ok {
			return bad("want a structure, got %T", raw)
		}
		out := map[string]any{}
		keys := sortedKeys(in)
		for _, k := range keys {
			ms, ok := s.Members[k]
			if !ok {
				bad("unknown member %q", k)
				continue
			}
			if v := m.Conform(ms, in[k], join(path, k), errs); v != nil {
				out[k] = v
			}
		}
		for _, r := range s.Required {
			if _, ok := in[r]; !ok {
				bad("missing required member %q", r)
			}
		}
		return out
	case "list":
		in, ok := raw.([]any)
		if !ok {
			return bad("want a list, got %T", raw)
		}
		out := make([]any, 0, len(in))
		for i, v := range in {
			out = append(out, m.Conform(s.Member, v, fmt.Sprintf("%s[%d]", path, i), errs))
		}
		return out
	case "map":
		in, ok := raw.(map[string]any)
		if !ok {
			return bad("want a map, got %T", raw)
		}
		out := map[string]any{}
		for _, k := range sortedKeys(in) {
			out[k] = m.Conform(s.Value, in[k], join(path, k), errs)
		}
		return out
	case "string":
		v, ok := raw.(string)
		if !ok {
			return bad("want a string, got %T", raw)
		}
		if vals, ok := m.Enums[s.Name]; ok && !contains(vals, v) {
			return bad("%q is not one of %s", v, strings.Join(vals, ", "))
		}
		if r, ok := m.Ranges[s.Name]; ok && (float64(len(v)) < r[0] || float64(len(v)) > r[1]) {
			return bad("length %d outside %g to %g", len(v), r[0], r[1])
		}
		return v
	case "integer", "long":
		n, err := toFloat(raw)
		if err != nil || n != math.Trunc(n) {
			return bad("want an integer, got %v", raw)
		}
		if r, ok := m.Ranges[s.Name]; ok && (n < r[0] || n > r[1]) {
			return bad("%g outside %g to %g", n, r[0], r[1])
		}
		return int64(n)
	case "double", "float":
		n, err := toFloat(raw)
		if err != nil {
			return bad("want a number, got %v", raw)
		}
		return n
	case "boolean":
		switch v := raw.(type) {
		case bool:
			return v
		case string:
			if v == "true" || v == "false" {
				return v == "true"
			}
		}
		return bad("want a boolean, got %v", raw)
	case "timestamp":
		switch v := raw.(type) {
		case time.Time:
			return v
		case string:
			if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
				return t
			}
		}
		n, err := toFloat(raw)
		if err != nil {
			return bad("want a timestamp, got %v", raw)
		}
		sec, frac := math.Modf(n)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC()
	case "blob":
		switch v := raw.(type) {
		case []byte:
			return v
		case string:
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return bad("want base64, got %q", v)
			}
			return b
		}
		return bad("want a blob, got %T", raw)
	}
	return bad("shape type %q unknown to the fake", s.Type)
}

func toFloat(raw any) (float64, error) {
	switch v := raw.(type) {
	case json.Number:
		return v.Float64()
	case string:
		return strconv.ParseFloat(v, 64)
	case float64:
		return v, nil
	case int64:
		return float64(v), nil
	case int:
		return float64(v), nil
	case uint64:
		return float64(v), nil
	}
	return 0, fmt.Errorf("not a number: %T", raw)
}

func orTop(path string) string {
	if path == "" {
		return "request"
	}
	return path
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func sortedKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func contains(vals []string, v string) bool {
	for _, x := range vals {
		if x == v {
			return true
		}
	}
	return false
}
