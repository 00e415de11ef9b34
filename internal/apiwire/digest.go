package apiwire

import (
	"crypto/sha256"
	"encoding/base64"
)

// DigestHeader carries the SHA-256 of a mutating request's body as the
// client sent it, in the form of RFC 9530: "sha-256=:<base64>:".
const DigestHeader = "Content-Digest"

// ContentDigest is the DigestHeader value of body.
func ContentDigest(body []byte) string {
	sum := sha256.Sum256(body)
	return "sha-256=:" + base64.StdEncoding.EncodeToString(sum[:]) + ":"
}
