package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"

	"github.com/runwayhq/runway/internal/config"
)

// DefaultMaxBody is the largest request body accepted by default: a resolved
// manifest is a few kilobytes.
const DefaultMaxBody = 1 << 20

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// DeployRequest asks for a release.
type DeployRequest struct {
	Environment string         `json:"environment"`
	Service     config.Service `json:"service"`
	Version     string         `json:"version,omitempty"`
}

// HaltRequest asks a release to stop.
type HaltRequest struct {
	Reason string `json:"reason,omitempty"`
}

// errTooLarge marks a body over the limit.
var errTooLarge = errors.New("request body too large")

// invalidError lists every problem of a request.
type invalidError struct{ problems []string }

func (e *invalidError) Error() string {
	return fmt.Sprintf("%d problems: %v", len(e.problems), e.problems)
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &invalidError{problems: []string{"body is not valid JSON for this request: " + err.Error()}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &invalidError{problems: []string{"body has data after the JSON value"}}
	}
	return nil
}

// DecodeDeployRequest decodes and validates a deploy request body.
func DecodeDeployRequest(b []byte) (*DeployRequest, error) {
	var req DeployRequest
	if err := decodeStrict(b, &req); err != nil {
		return nil, err
	}
	var problems []string
	if !nameRE.MatchString(req.Environment) {
		problems = append(problems, fmt.Sprintf("environment %q: use 1-63 lower-case letters, digits and dashes", req.Environment))
	}
	if !nameRE.MatchString(req.Service.Name) {
		problems = append(problems, fmt.Sprintf("service.name %q: use 1-63 lower-case letters, digits and dashes", req.Service.Name))
	}
	if len(req.Version) > 128 {
		problems = append(problems, "version: at most 128 characters")
	}
	if len(req.Service.Command) == 0 && req.Service.Image == "" {
		problems = append(problems, "service: set command (process targets) or image (container targets)")
	}
	if len(problems) > 0 {
		return nil, &invalidError{problems: problems}
	}
	return &req, nil
}

// DecodeHaltRequest decodes a halt request body; an empty body is allowed.
func DecodeHaltRequest(b []byte) (*HaltRequest, error) {
	var req HaltRequest
	if len(bytes.TrimSpace(b)) == 0 {
		return &req, nil
	}
	if err := decodeStrict(b, &req); err != nil {
		return nil, err
	}
	if len(req.Reason) > 1024 {
		return nil, &invalidError{problems: []string{"reason: at most 1024 characters"}}
	}
	return &req, nil
}

// readBody reads a JSON request body of at most limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, limit int64, allowEmpty bool) ([]byte, error) {
	if ct := r.Header.Get("Content-Type"); ct != "" || !allowEmpty {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			return nil, errUnsupportedType
		}
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, errTooLarge
	}
	return b, err
}

var errUnsupportedType = errors.New("Content-Type must be application/json")
