package engine

import (
	"errors"
	"fmt"
	"sort"

	"github.com/runwayhq/runway/internal/target"
)

// Drivers is the registry of targets: it maps a target kind (an
// environment's target: "local", "docker", "kubernetes", "aws") to the
// target that runs releases there. The server builds it once; a release
// whose target has none is refused at submit.
type Drivers map[string]target.Target

// DefaultTarget is the target of releases recorded before releases named
// theirs.
const DefaultTarget = "local"

// ErrNoDriver is returned (wrapped) for a target this engine has no driver for.
var ErrNoDriver = errors.New("no driver for this target")

// For returns the target of kind ("" is DefaultTarget).
func (d Drivers) For(kind string) (target.Target, error) {
	if kind == "" {
		kind = DefaultTarget
	}
	if t, ok := d[kind]; ok {
		return t, nil
	}
	return nil, fmt.Errorf("target %q: %w", kind, ErrNoDriver)
}

// Targets lists the targets that have a driver, sorted.
func (d Drivers) Targets() []string {
	out := make([]string, 0, len(d))
	for k := range d {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
