// Package httpjson is the one copy of how Runway speaks JSON over HTTP, for
// the server and the agent alike: strict decoding of request bodies and
// state files (one object, no unknown fields, nothing after it, errors that
// name the field) and RFC 9457 problem responses under one type namespace.
//
// It is a leaf: it imports nothing of Runway's, so the wire packages
// (apiwire, agentapi) and both handlers can use it.
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ProblemTypeBase prefixes the type URI of every problem Runway returns,
// from the server and from the agent.
const ProblemTypeBase = "https://runway.dev/problems/"

// TypeURI is the problem type URI of kind: "StoreBehind" and "store-behind"
// are both ProblemTypeBase + "store-behind".
func TypeURI(kind string) string { return ProblemTypeBase + Slug(kind) }

// Slug turns an error kind (CamelCase or already a slug) into the lower-case,
// dash-separated last segment of its type URI.
func Slug(s string) string {
	out := make([]byte, 0, len(s)+4)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
			out = append(out, c+'a'-'A')
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			out = append(out, c)
		default:
			if len(out) > 0 && out[len(out)-1] != '-' {
				out = append(out, '-')
			}
		}
	}
	return strings.TrimSuffix(string(out), "-")
}

// DecodeError is why a JSON document was refused. Field is the JSON path
// of the value at fault ("instances", "health.interval"), or "" when the
// document as a whole is (empty, not JSON, more than one value).
type DecodeError struct {
	Field string
	Msg   string
}

func (e *DecodeError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return fmt.Sprintf("field %q: %s", e.Field, e.Msg)
}

// Decode reads exactly one JSON value from b into v: unknown object fields
// are refused, and so is anything but white space after the value. Every
// error is a *DecodeError.
func Decode(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &DecodeError{Msg: "holds more than one JSON value"}
	}
	return nil
}

func decodeError(err error) *DecodeError {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.Is(err, io.EOF):
		return &DecodeError{Msg: "is empty: send a JSON object"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &DecodeError{Msg: "is not valid JSON: it ends early"}
	case errors.As(err, &se):
		return &DecodeError{Msg: fmt.Sprintf("is not valid JSON at byte %d: %v", se.Offset, err)}
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return &DecodeError{Msg: fmt.Sprintf("must be a JSON %s, not %s", te.Type, te.Value)}
		}
		return &DecodeError{Field: field, Msg: fmt.Sprintf("must be %s, not %s", te.Type, te.Value)}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &DecodeError{Field: f, Msg: "is not a known field"}
	}
	return &DecodeError{Msg: strings.TrimPrefix(err.Error(), "json: ")}
}

// Write sends v as a JSON response with the given status; HTML characters
// are not escaped (the bodies are read by programs, not browsers).
func Write(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// WriteProblem sends problem (an RFC 9457 body: apiwire.Problem or
// agentapi.Problem) as application/problem+json with the given status.
func WriteProblem(w http.ResponseWriter, status int, problem any) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(problem)
}
