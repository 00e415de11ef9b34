// Package api is the HTTP/JSON API of `runway server` under /v1. Errors are
// application/problem+json (RFC 9457); request bodies are size-limited and
// decoded strictly (unknown fields, trailing data and wrong content types are
// refused).
//
// This is a skeleton: releases can be submitted, listed, shown and halted.
// Authentication, authorization and the audit log (design §7) are still to
// be added in front of these handlers.
package api
