package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// TokenPrefix starts every Runway token, so a leaked one is recognisable
// (internal/redact masks it) and a token of another system is refused early.
const TokenPrefix = "rwy_"

// tokenHexLen is the hex length of a token's 256 random bits.
const tokenHexLen = 64

// ErrMalformedToken: the bearer value is not a Runway token.
var ErrMalformedToken = errors.New("not a Runway token")

// NewToken returns a new token: TokenPrefix and 64 hex digits from crypto/rand.
func NewToken() (string, error) {
	raw := make([]byte, tokenHexLen/2)
	if _, err := rand.Read(raw); err != nil {
		return "", fmt.Errorf("make token: %w", err)
	}
	return TokenPrefix + hex.EncodeToString(raw), nil
}

// ParseToken checks that s is a well-formed token and returns it. The error
// never quotes s.
func ParseToken(s string) (string, error) {
	rest, ok := strings.CutPrefix(s, TokenPrefix)
	if !ok {
		return "", fmt.Errorf("%w: a token starts with %q", ErrMalformedToken, TokenPrefix)
	}
	if len(rest) != tokenHexLen {
		return "", fmt.Errorf("%w: a token has %d hex digits after %q", ErrMalformedToken, tokenHexLen, TokenPrefix)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", fmt.Errorf("%w: a token has only lower-case hex digits after %q", ErrMalformedToken, TokenPrefix)
		}
	}
	return s, nil
}

// HashToken returns the hex SHA-256 of a token, as the store keeps it.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// hashEqual compares two hashes in constant time.
func hashEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// ParseBearer extracts the token of an Authorization header value
// ("Bearer <token>", scheme case-insensitive). The error never quotes the value.
func ParseBearer(header string) (string, error) {
	if header == "" {
		return "", errors.New("no Authorization header")
	}
	scheme, tok, ok := strings.Cut(header, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", errors.New(`the Authorization header must be "Bearer <token>"`)
	}
	return ParseToken(strings.TrimSpace(tok))
}
