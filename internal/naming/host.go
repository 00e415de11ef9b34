package naming

import "strings"

// NormalizeHost lowercases a Host header value and strips its port. It
// reports false for values that cannot be a host name.
func NormalizeHost(h string) (string, bool) {
	if h == "" {
		return "", false
	}
	if h[0] == '[' { // IPv6 literal
		end := strings.IndexByte(h, ']')
		if end < 0 {
			return "", false
		}
		return strings.ToLower(h[:end+1]), true
	}
	if i := strings.IndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > MaxHostLen {
		return "", false
	}
	lower := true
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '.', c == '_':
		case 'A' <= c && c <= 'Z':
			lower = false
		default:
			return "", false
		}
	}
	if !lower {
		h = strings.ToLower(h)
	}
	return h, true
}
