// Package redact removes credentials from text Runway keeps or shows but did
// not write itself — the output of a failed hook stored in a release's
// record, say — and caps its size. It knows the shapes of Runway's own tokens
// and of common ones (cloud keys, bearer tokens, private keys, JWTs,
// NAME_TOKEN=value assignments); it is a safety net behind the rule that
// processes never receive the server's secrets in the first place.
package redact

import (
	"regexp"
	"sort"
	"strings"
)

// Mark replaces what was removed.
const Mark = "[redacted]"

var patterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	// PEM private keys, whole.
	{regexp.MustCompile(`-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|$)`), Mark},
	// Authorization headers and bearer tokens.
	{regexp.MustCompile(`(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}`), "$1 " + Mark},
	// NAME=value and "name": "value" where the name says it is secret.
	{regexp.MustCompile(`(?i)\b([A-Z0-9_.-]*(?:TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)[A-Z0-9_.-]*)("?\s*[=:]\s*)("?)[^\s"',;]+`), "$1$2$3" + Mark},
	// Runway tokens, cloud and SaaS keys.
	{regexp.MustCompile(`\brwy_[A-Za-z0-9_]{16,}`), Mark},
	{regexp.MustCompile(`\b(AKIA|ASIA)[0-9A-Z]{16}\b`), Mark},
	{regexp.MustCompile(`\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bgithub_pat_[A-Za-z0-9_]{20,}`), Mark},
	{regexp.MustCompile(`\bxox[abposr]-[A-Za-z0-9-]{10,}`), Mark},
	{regexp.MustCompile(`\bsk_(live|test)_[A-Za-z0-9]{16,}`), Mark},
	// JWTs.
	{regexp.MustCompile(`\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}`), Mark},
}

// hexToken is a bare 256-bit hex token (the agent's token has this shape);
// a sha256: digest is kept.
var hexToken = regexp.MustCompile(`(sha256:)?\b[0-9a-f]{64}\b`)

// String returns s with every credential it recognises replaced by Mark.
func String(s string) string {
	for _, p := range patterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return hexToken.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "sha256:") {
			return m
		}
		return Mark
	})
}

// Tail redacts s and keeps at most its last max bytes, cut at a line start
// when one is near, marking the cut.
func Tail(s string, max int) string {
	s = String(s)
	if len(s) <= max {
		return s
	}
	s = s[len(s)-max:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < max/4 {
		s = s[i+1:]
	}
	return "[... earlier output cut]\n" + s
}

// Values returns s with every occurrence of the given values (the secrets a
// process received, by variable name) replaced by Mark, longest first so a
// value inside another goes with it.
func Values(s string, values map[string]string) string {
	if len(values) == 0 {
		return s
	}
	list := make([]string, 0, len(values))
	for _, v := range values {
		if v != "" {
			list = append(list, v)
		}
	}
	sort.Slice(list, func(i, j int) bool { return len(list[i]) > len(list[j]) })
	for _, v := range list {
		s = strings.ReplaceAll(s, v, Mark)
	}
	return s
}

// Output is the kept output of a process that saw values (a task given the
// release's secrets): read(n) returns the last n bytes of what it wrote;
// Output reads plus the longest value, so a value cut by that
// start is cut again after redaction and never kept in part, removes the
// values and the credentials String recognises, and keeps at most the last
// max bytes.
func Output(read func(n int) (string, error), values map[string]string, limit int) (string, error) {
	margin := 0
	for _, v := range values {
		margin = max(margin, len(v))
	}
	s, err := read(limit + margin)
	if err != nil {
		return "", err
	}
	s = Values(s, values)
	if margin > 0 && len(s) > limit {
		s = s[len(s)-limit:]
	}
	return String(s), nil
}
