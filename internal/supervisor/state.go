package supervisor

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/httpjson"
)

// StateFormat is the format tag of the agent's state file.
const StateFormat = "runway-agent-state/1"

// StateFileName is the name of the state file in the data directory.
const StateFileName = "state.json"

// stateFile is what the supervisor persists: the desired groups and the
// processes it runs for them (pid and start time, to re-adopt them).
type stateFile struct {
	Format  string       `json:"format"`
	AgentID string       `json:"agent_id"`
	Groups  []groupState `json:"groups"`
}

type groupState struct {
	Spec      agentapi.GroupSpec `json:"spec"`
	State     string             `json:"state"`
	CreatedAt time.Time          `json:"created_at"`
	Limits    string             `json:"limits"`
	NextIndex int                `json:"next_index"`
	Instances []instanceState    `json:"instances"`
}

type instanceState struct {
	ID         string    `json:"id"`
	Index      int       `json:"index"`
	Port       int       `json:"port"`
	PID        int       `json:"pid,omitempty"`
	StartTicks uint64    `json:"start_ticks,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	Restarts   int       `json:"restarts"`
	Cgroups    []string  `json:"cgroups,omitempty"`
	// Healthy is the last known health: an adopted instance that was
	// healthy is routed to at once (and re-checked at once) instead of
	// waiting for healthy_threshold checks, so an agent restart is not an
	// outage of every service.
	Healthy bool `json:"healthy,omitempty"`
	// Container is the id of the instance's container (an image group).
	Container string `json:"container,omitempty"`
}

// StateError means the state file exists but cannot be used; the agent
// refuses to start rather than forget the instances it lists.
type StateError struct {
	Path string
	Err  error
}

func (e *StateError) Error() string {
	return fmt.Sprintf("state file %s is unreadable: %v.\n"+
		"The agent refuses to start so that the instances it lists are not forgotten. "+
		"To recover: fix the file by hand (it is JSON, see docs/agent-api.md), or move it away "+
		"(mv %s %s.bad) and start the agent again with no groups; the processes listed in the "+
		"old file keep running and must then be stopped by hand (kill -TERM -<pid>).",
		e.Path, e.Err, e.Path, e.Path)
}

func (e *StateError) Unwrap() error { return e.Err }

func loadState(path string) (*stateFile, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &StateError{Path: path, Err: err}
	}
	var st stateFile
	if err := httpjson.Decode(b, &st); err != nil {
		return nil, &StateError{Path: path, Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if st.Format != StateFormat {
		return nil, &StateError{Path: path, Err: fmt.Errorf("format %q, want %q", st.Format, StateFormat)}
	}
	if st.AgentID == "" {
		return nil, &StateError{Path: path, Err: errors.New("agent_id is empty")}
	}
	seen := map[string]bool{}
	for _, g := range st.Groups {
		if g.Spec.Name == "" || seen[g.Spec.Name] {
			return nil, &StateError{Path: path, Err: fmt.Errorf("group name %q is empty or repeated", g.Spec.Name)}
		}
		seen[g.Spec.Name] = true
		for _, in := range g.Instances {
			if in.ID == "" || seen["i/"+in.ID] || in.Port <= 0 || in.Port > 65535 || in.PID < 0 {
				return nil, &StateError{Path: path, Err: fmt.Errorf("group %q: instance %q is invalid (empty or repeated id, bad port or pid)", g.Spec.Name, in.ID)}
			}
			seen["i/"+in.ID] = true
		}
	}
	return &st, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
