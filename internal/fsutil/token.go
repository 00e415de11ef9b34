package fsutil

import (
	"fmt"
	"os"
	"strings"
)

// Token files (the agent's token, the server's admin.token, a context's
// token_file) hold one bearer token on one line, mode 0600. ReadToken and
// WriteToken are the one way Runway reads and writes them.

// WriteToken writes tok to path, atomically and durably, mode 0600.
func WriteToken(path, tok string) error {
	return WriteFileAtomic(path, []byte(tok+"\n"), FileMode)
}

// ReadToken reads the token of a token file: its one line, white space
// around it trimmed. The error of a missing or unreadable file wraps the
// *fs.PathError; a file that is empty or holds more than one word is refused
// (the token itself never appears in the error).
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	tok := strings.TrimSpace(string(b))
	switch {
	case tok == "":
		return "", fmt.Errorf("token file %s is empty", path)
	case strings.ContainsAny(tok, " \t\r\n"):
		return "", fmt.Errorf("token file %s holds more than one line or word: it must hold the token alone", path)
	}
	return tok, nil
}
