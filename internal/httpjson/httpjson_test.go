package httpjson

import (
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
)

type sample struct {
	Name      string `json:"name"`
	Instances int    `json:"instances"`
	Health    struct {
		Path string `json:"path"`
	} `json:"health"`
}

func TestDecode(t *testing.T) {
	for _, tc := range []struct {
		name, in, field, msg string
	}{
		{"ok", `{"name":"web","instances":2}`, "", ""},
		{"ok with trailing space", "{\"name\":\"web\"}\n \t", "", ""},
		{"empty", ``, "", "is empty"},
		{"only space", "  \n", "", "is empty"},
		{"ends early", `{"name":"web"`, "", "ends early"},
		{"syntax", `{"name":web}`, "", "not valid JSON at byte"},
		{"unknown field", `{"name":"web","instnces":2}`, "instnces", "not a known field"},
		{"unknown nested field", `{"health":{"pth":"/"}}`, "pth", "not a known field"},
		{"wrong type", `{"instances":"two"}`, "instances", "must be int, not string"},
		{"wrong nested type", `{"health":{"path":3}}`, "health.path", "must be string, not number"},
		{"not an object", `[1]`, "", "must be a JSON"},
		{"two values", `{"name":"a"}{"name":"b"}`, "", "more than one JSON value"},
		{"trailing garbage", `{"name":"a"} x`, "", "more than one JSON value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s sample
			err := Decode([]byte(tc.in), &s)
			if tc.msg == "" {
				if err != nil {
					t.Fatalf("Decode(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("Decode(%q) = %v (%T), want a *DecodeError", tc.in, err, err)
			}
			if de.Field != tc.field || !strings.Contains(de.Msg, tc.msg) {
				t.Fatalf("Decode(%q) = field %q msg %q, want field %q msg containing %q", tc.in, de.Field, de.Msg, tc.field, tc.msg)
			}
		})
	}
}

func TestSlug(t *testing.T) {
	for in, want := range map[string]string{
		"StoreBehind": "store-behind", "store-behind": "store-behind", "BadRequest": "bad-request",
		"Not Found": "not-found", "internal": "internal", "HostConflict": "host-conflict", "a_b": "a-b", "end-": "end",
	} {
		if got := Slug(in); got != want {
			t.Errorf("Slug(%q) = %q, want %q", in, got, want)
		}
	}
	if got := TypeURI("StoreBehind"); got != ProblemTypeBase+"store-behind" {
		t.Errorf("TypeURI = %q", got)
	}
}

func TestWriteProblem(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteProblem(rec, 409, map[string]any{"type": TypeURI("Conflict"), "status": 409, "detail": "a <b> & c"})
	if rec.Code != 409 || rec.Header().Get("Content-Type") != "application/problem+json" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("got %d %v", rec.Code, rec.Header())
	}
	if !strings.Contains(rec.Body.String(), "a <b> & c") {
		t.Fatalf("body %q escapes HTML", rec.Body.String())
	}
	rec = httptest.NewRecorder()
	Write(rec, 200, []int{1})
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" || strings.TrimSpace(rec.Body.String()) != "[1]" {
		t.Fatalf("got %d %v %q", rec.Code, rec.Header(), rec.Body.String())
	}
}

// FuzzDecode checks that Decode never panics, that every error is a
// *DecodeError, and that what it accepts is one valid JSON value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{`{"name":"web"}`, `{"health":{"path":"/"}}`, `{`, `[]`, `{"a":1}{}`, `{"instances":1e400}`, "\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var s sample
		err := Decode(b, &s)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Msg == "" {
				t.Fatalf("Decode(%q) = %v (%T), want a *DecodeError with a message", b, err, err)
			}
			return
		}
		if !json.Valid(b) {
			t.Fatalf("Decode accepted invalid JSON %q", b)
		}
	})
}
