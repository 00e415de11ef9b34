package awsfake

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// The three wire protocols of the five services, decoded into the generic
// values Model.Conform checks and encoded back from them:
//
//   - awsJson1_1 (ECS, CloudWatch Logs): X-Amz-Target names the operation,
//     the body is the input as JSON; timestamps are epoch seconds.
//   - awsQuery (ELBv2, STS): a form body with Action and Version; lists are
//     Name.member.N, maps Name.entry.N.key/value; the answer is XML.
//   - rpcv2Cbor (CloudWatch, as the Go SDK speaks it): POST
//     /service/<service>/operation/<operation>, a CBOR body, timestamps as
//     tag 1.

// APIError is an error answer of the API: its code (the shape the SDK
// turns it into), message and HTTP status.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, a ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, a...)}
}

// decodeJSON reads a JSON body as generic values (numbers kept exact).
func decodeJSON(body []byte) (any, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return map[string]any{}, nil
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// jsonValue turns a conformed value into what encoding/json writes as AWS
// does.
func jsonValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = jsonValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = jsonValue(e)
		}
		return out
	case time.Time:
		return float64(x.UnixMilli()) / 1000
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	}
	return v
}

// decodeQuery reads the form of an awsQuery request as the generic value of
// shape s; keys it did not use are unknown members.
func decodeQuery(form url.Values, s *Shape) (any, []string) {
	used := map[string]bool{"Action": true, "Version": true}
	v := queryValue(form, s, "", used)
	var unknown []string
	for k := range form {
		if !used[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	if v == nil {
		v = map[string]any{}
	}
	return v, unknown
}

func hasPrefix(form url.Values, p string) bool {
	for k := range form {
		if k == p || strings.HasPrefix(k, p+".") {
			return true
		}
	}
	return false
}

func queryValue(form url.Values, s *Shape, key string, used map[string]bool) any {
	switch s.Type {
	case "structure":
		out := map[string]any{}
		for name, ms := range s.Members {
			k := name
			if key != "" {
				k = key + "." + name
			}
			if !hasPrefix(form, k) {
				continue
			}
			if v := queryValue(form, ms, k, used); v != nil {
				out[name] = v
			}
		}
		if key != "" && len(out) == 0 {
			return nil
		}
		return out
	case "list":
		if vs, ok := form[key]; ok && len(vs) == 1 && vs[0] == "" {
			used[key] = true // Name= is the empty list
			return []any{}
		}
		var out []any
		for i := 1; ; i++ {
			k := key + ".member." + strconv.Itoa(i)
			if s.Flattened {
				k = key + "." + strconv.Itoa(i)
			}
			if !hasPrefix(form, k) {
				break
			}
			out = append(out, queryValue(form, s.Member, k, used))
		}
		return out
	case "map":
		out := map[string]any{}
		for i := 1; ; i++ {
			k := key + ".entry." + strconv.Itoa(i)
			if !hasPrefix(form, k) {
				break
			}
			used[k+".key"] = true
			out[form.Get(k+".key")] = queryValue(form, s.Value, k+".value", used)
		}
		return out
	default:
		vs, ok := form[key]
		if !ok {
			return nil
		}
		used[key] = true
		return vs[0]
	}
}

// writeXML writes v of shape s as the element name.
func writeXML(b *bytes.Buffer, name string, s *Shape, v any) {
	if v == nil {
		return
	}
	switch s.Type {
	case "structure":
		m, _ := v.(map[string]any)
		b.WriteString("<" + name + ">")
		for _, k := range sortedKeys(m) {
			ms := s.Members[k]
			if ms == nil {
				continue
			}
			el := k
			if ms.LocationName != "" {
				el = ms.LocationName
			}
			writeXML(b, el, ms, m[k])
		}
		b.WriteString("</" + name + ">")
	case "list":
		l, _ := v.([]any)
		el := "member"
		if s.Member.LocationName != "" {
			el = s.Member.LocationName
		}
		if s.Flattened {
			for _, e := range l {
				writeXML(b, name, s.Member, e)
			}
			return
		}
		b.WriteString("<" + name + ">")
		for _, e := range l {
			writeXML(b, el, s.Member, e)
		}
		b.WriteString("</" + name + ">")
	case "map":
		m, _ := v.(map[string]any)
		b.WriteString("<" + name + ">")
		for _, k := range sortedKeys(m) {
			b.WriteString("<entry><key>")
			xmlText(b, k)
			b.WriteString("</key>")
			writeXML(b, "value", s.Value, m[k])
			b.WriteString("</entry>")
		}
		b.WriteString("</" + name + ">")
	default:
		b.WriteString("<" + name + ">")
		xmlText(b, scalarText(v))
		b.WriteString("</" + name + ">")
	}
}

func scalarText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case time.Time:
		return x.UTC().Format("2006-01-02T15:04:05.000Z")
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case []byte:
		return base64.StdEncoding.EncodeToString(x)
	}
	return fmt.Sprint(v)
}

func xmlText(b *bytes.Buffer, s string) {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	b.WriteString(r.Replace(s))
}

// fromCBOR turns a decoded CBOR value into generic values.
func fromCBOR(v cbor.Value) (any, error) {
	switch x := v.(type) {
	case cbor.Map:
		out := make(map[string]any, len(x))
		for k, e := range x {
			g, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			if g != nil {
				out[k] = g
			}
		}
		return out, nil
	case cbor.List:
		out := make([]any, 0, len(x))
		for _, e := range x {
			g, err := fromCBOR(e)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	case cbor.String:
		return string(x), nil
	case cbor.Uint:
		if uint64(x) > math.MaxInt64 {
			return float64(x), nil
		}
		return int64(x), nil
	case cbor.NegInt:
		return -int64(x), nil
	case cbor.Float32:
		return float64(x), nil
	case cbor.Float64:
		return float64(x), nil
	case cbor.Bool:
		return bool(x), nil
	case cbor.Slice:
		return []byte(x), nil
	case *cbor.Nil, *cbor.Undefined:
		return nil, nil
	case *cbor.Tag:
		if x.ID != 1 {
			return nil, fmt.Errorf("cbor tag %d: only tag 1 (epoch time) is used by the protocol", x.ID)
		}
		t, err := cbor.AsTime(x)
		if err != nil {
			return nil, err
		}
		return t, nil
	case cbor.Tag:
		return fromCBOR(&x)
	}
	return nil, fmt.Errorf("cbor value %T", v)
}

// toCBOR turns a conformed value into CBOR.
func toCBOR(v any) cbor.Value {
	switch x := v.(type) {
	case map[string]any:
		out := cbor.Map{}
		for k, e := range x {
			out[k] = toCBOR(e)
		}
		return out
	case []any:
		out := cbor.List{}
		for _, e := range x {
			out = append(out, toCBOR(e))
		}
		return out
	case string:
		return cbor.String(x)
	case int64:
		if x < 0 {
			return cbor.NegInt(uint64(-x))
		}
		return cbor.Uint(uint64(x))
	case float64:
		return cbor.Float64(x)
	case bool:
		return cbor.Bool(x)
	case []byte:
		return cbor.Slice(x)
	case time.Time:
		return &cbor.Tag{ID: 1, Value: cbor.Float64(float64(x.UnixMilli()) / 1000)}
	}
	return &cbor.Nil{}
}

// normalize turns what the fake's handlers build (typed slices, ints) into
// the generic values Conform reads.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if n := normalize(e); n != nil {
				out[k] = n
			}
		}
		return out
	case []map[string]any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalize(e)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case []float64:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case []time.Time:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = e
		}
		return out
	case int:
		return int64(x)
	case int32:
		return int64(x)
	}
	return v
}

func writeError(w http.ResponseWriter, protocol, ns, requestID string, e *APIError) {
	switch protocol {
	case "query":
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(e.Status)
		var b bytes.Buffer
		kind := "Sender"
		if e.Status >= 500 {
			kind = "Receiver"
		}
		fmt.Fprintf(&b, `<ErrorResponse xmlns="%s"><Error><Type>%s</Type><Code>`, ns, kind)
		xmlText(&b, e.Code)
		b.WriteString("</Code><Message>")
		xmlText(&b, e.Message)
		fmt.Fprintf(&b, "</Message></Error><RequestId>%s</RequestId></ErrorResponse>", requestID)
		_, _ = w.Write(b.Bytes())
	case "cbor":
		w.Header().Set("Content-Type", "application/cbor")
		w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
		w.WriteHeader(e.Status)
		_, _ = w.Write(cbor.Encode(cbor.Map{"__type": cbor.String(e.Code), "message": cbor.String(e.Message)}))
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", e.Code)
		w.WriteHeader(e.Status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.Code, "message": e.Message})
	}
}
