package server

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/runwayhq/runway/internal/engine"
)

// TestFaultEnv names an environment variable for tests only: the end-to-end
// crash tests set it to make the server kill itself (SIGKILL, no clean-up)
// when a release reaches a point of its run, so that a restart must resume
// from exactly there. Its value is STATE[:STEP][:after], such as "Lock",
// "Deploy:1" (before step 1 of Deploy acts) or "CleanUpSuccess:0:after".
// Never set it outside tests.
const TestFaultEnv = "RUNWAY_TEST_FAULT"

// testFault returns the engine hook that TestFaultEnv asks for, or nil.
func testFault(spec string) (func(string, engine.State, int, bool) bool, error) {
	if spec == "" {
		return nil, nil
	}
	parts := strings.Split(spec, ":")
	state, step, after := engine.State(parts[0]), -1, false
	if len(parts) > 1 {
		n, err := strconv.Atoi(parts[1])
		if err != nil {
			return nil, fmt.Errorf("%s=%q: want STATE[:STEP][:after]", TestFaultEnv, spec)
		}
		step = n
	}
	if len(parts) > 2 {
		if parts[2] != "after" || len(parts) > 3 {
			return nil, fmt.Errorf("%s=%q: want STATE[:STEP][:after]", TestFaultEnv, spec)
		}
		after = true
	}
	return func(release string, s engine.State, i int, a bool) bool {
		if s == state && i == step && a == after {
			fmt.Fprintf(os.Stderr, "%s: killing the server at %s of release %s\n", TestFaultEnv, spec, release)
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal ends the process
		}
		return false
	}, nil
}
