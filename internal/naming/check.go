package naming

import (
	"errors"
	"fmt"
	"strings"
)

// MaxHostLen is the longest host name (RFC 1035: 253 characters without the
// trailing dot).
const MaxHostLen = 253

// CheckHost reports what is wrong with h as a host name a route may serve,
// or nil. A host name is lower case, without scheme, port, path or trailing
// dot: dot-separated labels of 1 to 63 letters, digits and '-', neither
// starting nor ending with '-' (an IPv4 address such as 127.0.0.1 is one).
// Wildcards (*.example.test) are refused: the proxy matches exact host names,
// so every host is listed. Callers that accept mixed case lower it first.
// The message says how to fix the name; the caller adds where it is.
func CheckHost(h string) error {
	switch {
	case h == "":
		return errors.New("is empty: write a host name such as api.example.test")
	case strings.Contains(h, "*"):
		return fmt.Errorf("%q: wildcard host names are not supported; list each host name, such as api.example.test", h)
	case strings.Contains(h, "://"):
		return fmt.Errorf("%q: write the host name only, without the scheme, such as api.example.test", h)
	case strings.ContainsAny(h, "/?#"):
		return fmt.Errorf("%q: write the host name only, without a path, such as api.example.test", h)
	case strings.Contains(h, ":"):
		return fmt.Errorf("%q: write the host name without a port (a route serves its hosts on every listener)", h)
	case strings.HasSuffix(h, "."):
		return fmt.Errorf("%q: write the host name without the trailing dot", h)
	case len(h) > MaxHostLen:
		return fmt.Errorf("is %d characters long: a host name has at most %d", len(h), MaxHostLen)
	case strings.ToLower(h) != h:
		return fmt.Errorf("%q: write host names in lower case (%q)", h, strings.ToLower(h))
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" {
			return fmt.Errorf("%q has an empty label (two dots in a row, or a leading dot)", h)
		}
		if len(l) > 63 {
			return fmt.Errorf("%q: label %q is longer than 63 characters", h, l)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return fmt.Errorf("%q: %q is not allowed in a host name; use letters, digits, '-' and '.'", h, string(rune(c)))
			}
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("%q: label %q starts or ends with '-'", h, l)
		}
	}
	return nil
}

// MaxPathPrefixLen bounds a route's path prefix.
const MaxPathPrefixLen = 256

// CheckPathPrefix reports what is wrong with p as a route's path prefix, or
// nil. The empty prefix routes every path, and so does "/": they are the same
// prefix (CanonicalPathPrefix), so two routes of one host cannot use one each.
// Any other prefix starts with '/', does not end with one, has no empty, "."
// or ".." segment, and holds visible ASCII characters other than '?', '#' and
// '%' (it is compared with the decoded request path, "/api" matching "/api"
// and "/api/x" but not "/apix").
func CheckPathPrefix(p string) error {
	if p == "" || p == "/" {
		return nil
	}
	if !strings.HasPrefix(p, "/") {
		return fmt.Errorf("%q: start the path prefix with '/', such as /api", p)
	}
	if strings.HasSuffix(p, "/") {
		return fmt.Errorf("%q: write the path prefix without the trailing '/' (%q also matches the paths below it)", p, strings.TrimRight(p, "/"))
	}
	if len(p) > MaxPathPrefixLen {
		return fmt.Errorf("is %d bytes long: a path prefix has at most %d", len(p), MaxPathPrefixLen)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= 0x7f || c == '?' || c == '#' || c == '%' {
			return fmt.Errorf("%q: byte %q is not allowed in a path prefix; use visible ASCII characters other than '?', '#' and '%%' (write the decoded path)", p, string(rune(c)))
		}
	}
	for _, s := range strings.Split(p[1:], "/") {
		if s == "" || s == "." || s == ".." {
			return fmt.Errorf("%q: has an empty, \".\" or \"..\" segment; write the path as clients send it, such as /api/v1", p)
		}
	}
	return nil
}

// CanonicalPathPrefix is the form of a valid path prefix that compares equal
// for equal prefixes: "/" is "".
func CanonicalPathPrefix(p string) string {
	if p == "/" {
		return ""
	}
	return p
}
