package api

import (
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/apiwire"
	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/httplimit"
)

// MaxBodyBytes bounds request bodies; a resolved manifest is a few KiB.
const MaxBodyBytes = 1 << 20

var (
	nameRe      = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)
	requestIDRe = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{26}$`)
	// fileRe is a manifest file name in a deploy request: a relative path
	// of plain segments ending in .hcl.
	fileRe = regexp.MustCompile(`^([A-Za-z0-9_][A-Za-z0-9._-]*/){0,15}[A-Za-z0-9_][A-Za-z0-9._-]*\.hcl$`)
)

// Limits of a deploy request's manifests.
const (
	MaxSourceFiles = 16
)

// decodeBody reads a JSON body into v: at most MaxBodyBytes, unknown fields
// refused, exactly one value. Errors are problems naming the field.
func decodeBody(r *http.Request, v any) error {
	body, err := readBody(r)
	if err != nil {
		return err
	}
	return decodeJSON(body, v)
}

// readBody reads a request's body, at most MaxBodyBytes and within the
// server's body timeout; errors are problems (413, 408, 400).
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, apiwire.Problemf(http.StatusRequestEntityTooLarge, apiwire.KindBodyTooLarge, "request body is larger than %d bytes", MaxBodyBytes)
		}
		if httplimit.IsBodyTimeout(err) {
			return nil, apiwire.Problemf(http.StatusRequestTimeout, apiwire.KindRequestTimeout, "%v (the server's --body-timeout); send the body at once", err)
		}
		return nil, apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "read request body: %v", err)
	}
	return body, nil
}

func decodeJSON(body []byte, v any) error {
	if err := httpjson.Decode(body, v); err != nil {
		var de *httpjson.DecodeError
		if errors.As(err, &de) && de.Field == "" {
			return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "request body %s", de.Msg)
		}
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "%v", err)
	}
	return nil
}

// validateDeployRequest checks a deploy request's fields (the guard checked its id and time).
func validateDeployRequest(d *apiwire.DeployRequest) error {
	if err := checkProject(d.Project); err != nil {
		return err
	}
	if err := checkTarget(d.Environment, d.Service); err != nil {
		return err
	}
	if d.Version != "" {
		if err := config.CheckVersion(d.Version); err != nil {
			return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"version\": %v", err)
		}
	}
	if len(d.Sources) == 0 || len(d.Sources) > MaxSourceFiles {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"sources\" must hold the service's manifest file(s), 1 to %d (runway deploy sends them)", MaxSourceFiles)
	}
	seen := map[string]bool{}
	for i, f := range d.Sources {
		if !fileRe.MatchString(f.Name) || strings.Contains(f.Name, "..") || f.Name == config.ProjectFileName {
			return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"sources[%d].name\" %q must be a relative path of a .hcl service manifest, such as \"web/web.service.hcl\"", i, trunc(f.Name))
		}
		if seen[f.Name] {
			return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"sources[%d].name\": %q is listed twice", i, trunc(f.Name))
		}
		seen[f.Name] = true
	}
	if d.ProjectSource == "" {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"project_source\" must be the client's runway.hcl (runway deploy sends it)")
	}
	if d.Dir != "" && (!filepath.IsAbs(d.Dir) || filepath.Clean(d.Dir) != d.Dir || strings.ContainsRune(d.Dir, 0)) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRelease, "field \"dir\" %q must be a clean absolute directory", trunc(d.Dir))
	}
	return nil
}

func validateApplyProjectRequest(a *apiwire.ApplyProjectRequest) error {
	if a.Source == "" {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"source\" must be the project's runway.hcl")
	}
	if a.BaseVersion < 0 {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"base_version\" must be 0 or more")
	}
	return nil
}

func checkProject(p string) error {
	if !nameRe.MatchString(p) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"project\" must be a project name (lower-case letters, digits, dashes), got %q", trunc(p))
	}
	return nil
}

func validateRollbackRequest(r *apiwire.RollbackRequest) error {
	if err := checkProject(r.Project); err != nil {
		return err
	}
	if err := checkTarget(r.Environment, r.Service); err != nil {
		return err
	}
	if r.To != "" && !requestIDRe.MatchString(r.To) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"to\" must be a release id (26 characters, such as 01JD3Q...)")
	}
	return nil
}

func checkTarget(env, service string) error {
	if !nameRe.MatchString(env) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"environment\" must be an environment name (lower-case letters, digits, dashes), got %q", trunc(env))
	}
	if !nameRe.MatchString(service) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"service\" must be a service name (lower-case letters, digits, dashes), got %q", trunc(service))
	}
	return nil
}

// checkFreshness refuses requests without an id or outside the replay window;
// the guard applies it to every mutating request.
func checkFreshness(id string, at, now time.Time, window time.Duration) error {
	if !requestIDRe.MatchString(id) {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"request_id\" must be a ULID chosen by the client (26 characters)")
	}
	if at.IsZero() {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindBadRequest, "field \"requested_at\" is required (RFC 3339 time the request was made)")
	}
	if d := now.Sub(at); d > window || d < -window {
		return apiwire.Problemf(http.StatusBadRequest, apiwire.KindStaleRequest, "request made at %s is outside the server's %s replay window (server time %s); check the client's clock and send a new request",
			at.UTC().Format(time.RFC3339), window, now.UTC().Format(time.RFC3339))
	}
	return nil
}

func trunc(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
