package naming

import (
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	tests := []struct{ got, want string }{
		{Environment("production", "example.com"), "production.example.com"},
		{Environment("staging", ""), "staging.localhost"},
		{Environment("staging", "Example.COM."), "staging.example.com"},
		{Service("api", "production", "example.com"), "api.production.example.com"},
		{Service("api", "development", ""), "api.development.localhost"},
		{Preview("web", "production", "example.com"), "web-preview.production.example.com"},
		{Preview("web", "development", ""), "web-preview.development.localhost"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestCheckHost(t *testing.T) {
	for _, h := range []string{"api.example.test", "hello.localhost", "localhost", "127.0.0.1", "a-b.c1", "x", strings.Repeat("a", 63) + ".test"} {
		if err := CheckHost(h); err != nil {
			t.Errorf("CheckHost(%q): %v", h, err)
		}
	}
	for h, want := range map[string]string{
		"":                               "empty",
		"*.wild.test":                    "wildcard",
		"http://a.test":                  "scheme",
		"a.test/x":                       "path",
		"a.test:8080":                    "port",
		"a.test.":                        "trailing dot",
		"A.test":                         "lower case",
		"a..test":                        "empty label",
		".a.test":                        "empty label",
		"a_b.test":                       "not allowed",
		"bad host":                       "not allowed",
		"-a.test":                        "starts or ends",
		"a-.test":                        "starts or ends",
		strings.Repeat("a", 64) + ".x":   "longer than 63",
		strings.Repeat("a.", 127) + "ab": "at most 253",
		"é.test":                         "not allowed",
	} {
		err := CheckHost(h)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckHost(%q) = %v, want an error saying %q", h, err, want)
		}
	}
}

func TestCheckPathPrefix(t *testing.T) {
	for _, p := range []string{"", "/", "/api", "/api/v1", "/a-b_c.d~e"} {
		if err := CheckPathPrefix(p); err != nil {
			t.Errorf("CheckPathPrefix(%q): %v", p, err)
		}
	}
	for p, want := range map[string]string{
		"api":                          "start",
		"/api/":                        "trailing",
		"//":                           "trailing",
		"/a//b":                        "empty",
		"/a/./b":                       "empty",
		"/a/..":                        "empty",
		"/a b":                         "not allowed",
		"/a?b":                         "not allowed",
		"/a#b":                         "not allowed",
		"/a%20b":                       "not allowed",
		"/é":                           "not allowed",
		"/" + strings.Repeat("a", 256): "at most 256",
	} {
		err := CheckPathPrefix(p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("CheckPathPrefix(%q) = %v, want an error saying %q", p, err, want)
		}
	}
	if CanonicalPathPrefix("/") != "" || CanonicalPathPrefix("/api") != "/api" || CanonicalPathPrefix("") != "" {
		t.Error("CanonicalPathPrefix: / is the empty prefix, others are unchanged")
	}
}
