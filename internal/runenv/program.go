package runenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ProgramPath is where the program of a command is, without looking: a name
// containing '/' is a path, relative to dir unless absolute; a bare name
// stays bare, for the PATH of the machine that runs it. The server resolves
// a manifest's command against the manifest's directory with it, and the
// agent (Program) a group's against its work_dir.
func ProgramPath(prog, dir string) string {
	if !strings.ContainsRune(prog, '/') || filepath.IsAbs(prog) {
		return prog
	}
	return filepath.Join(dir, prog)
}

// Program finds the program of a command as Runway runs it (ProgramPath,
// then a bare name in PATH) and checks that it is an executable file; the
// error says what is wrong and how to fix it.
func Program(prog, dir string) (string, error) {
	p := ProgramPath(prog, dir)
	if !strings.ContainsRune(p, '/') {
		lp, err := lookPath(p)
		if err != nil {
			return "", fmt.Errorf("%q not found in PATH (%s)", prog, os.Getenv("PATH"))
		}
		p = lp
	}
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%q does not exist (looked at %s; build it first?)", prog, p)
		}
		return "", fmt.Errorf("%q: %v", prog, err)
	}
	if st.IsDir() {
		return "", fmt.Errorf("%q is a directory, not a program", prog)
	}
	if st.Mode()&0o111 == 0 {
		return "", fmt.Errorf("%q is not executable (mode %s): chmod +x %s", prog, st.Mode().Perm(), p)
	}
	return p, nil
}

func lookPath(prog string) (string, error) {
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if d == "" {
			continue
		}
		p := filepath.Join(d, prog)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", os.ErrNotExist
}
