package cli

import (
	"crypto/rand"

	"github.com/oklog/ulid/v2"
)

func newRequestID() string { return ulid.MustNew(ulid.Now(), rand.Reader).String() }
