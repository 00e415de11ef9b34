package cli

import (
	"fmt"
	"io"
	"path/filepath"
)

// generated is what runway infra generate wrote. Its fields are in the
// order of their JSON names, as the map it replaced printed them.
type generated struct {
	Dir       string   `json:"dir"`
	Kept      []string `json:"kept"`
	Removed   []string `json:"removed"`
	Unchanged int      `json:"unchanged"`
	Written   []string `json:"written"`

	env string // --env, for the next step's command
}

// generatedTable lists the files infra generate wrote, removed and kept, and
// what to run next.
func generatedTable(w io.Writer, v generated) error {
	dir := displayPath(v.Dir)
	for _, p := range v.Written {
		fmt.Fprintf(w, "wrote    %s\n", filepath.Join(dir, p))
	}
	for _, p := range v.Removed {
		fmt.Fprintf(w, "removed  %s\n", filepath.Join(dir, p))
	}
	for _, p := range v.Kept {
		fmt.Fprintf(w, "kept     %s (no Runway header: yours)\n", filepath.Join(dir, p))
	}
	fmt.Fprintf(w, "%s: %d written, %d unchanged, %d removed\n", dir, len(v.Written), v.Unchanged, len(v.Removed))
	if len(v.Written)+len(v.Removed) > 0 {
		env := v.env
		if env == "" {
			env = "ENV"
		}
		fmt.Fprintf(w, "Next: review the diff (git diff %s), then runway infra plan --env %s\n", dir, env)
	}
	return nil
}
