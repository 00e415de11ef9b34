package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httpjson"
	"github.com/runwayhq/runway/internal/supervisor"
)

// Generations fence a server whose store is behind the agent (docs/design.md,
// "Fencing"). Per service (environment + service), the agent keeps:
//
//   - generation: advanced by every mutating call on the service (create,
//     scale, delete group; put, delete route; maintenance; pause) and
//     returned in the Runway-Generation response header;
//   - fence: the highest Runway-Expect-Generation a caller has sent, that is
//     the highest generation a server proved it had recorded in its store.
//
// A mutating call whose Runway-Expect-Generation is below the fence is
// refused (409 store-behind) before anything changes: its caller's record
// is older than one a server already had, so its store was rewound.
// A call without the header (curl, an operator) is not fenced.
const (
	// GenerationsFormat is the format tag of DATA_DIR/generations.json.
	GenerationsFormat = "runway-agent-generations/1"
)

func genKey(g agentapi.ServiceGeneration) string { return g.Environment + "/" + g.Service }

type generationsFile struct {
	Format   string                       `json:"format"`
	Services []agentapi.ServiceGeneration `json:"services"`
}

// generations is the agent's table of service generations, persisted in
// DATA_DIR/generations.json. Writes are group-committed: a change is made
// in memory (mu), then persist writes the whole table unless a write that
// started after the change already did, so concurrent calls of many
// services share fsyncs instead of queueing one each behind a lock.
type generations struct {
	path string
	mu   sync.Mutex
	m    map[string]agentapi.ServiceGeneration
	// changes counts changes to m; written is the count the file holds.
	changes, written uint64

	writeMu sync.Mutex // one file write at a time
}

// persist returns once the file holds change number n (or a later state).
func (g *generations) persist(n uint64) error {
	g.mu.Lock()
	done := g.written >= n
	g.mu.Unlock()
	if done {
		return nil
	}
	g.writeMu.Lock()
	defer g.writeMu.Unlock()
	g.mu.Lock()
	if g.written >= n {
		g.mu.Unlock()
		return nil
	}
	f := generationsFile{Format: GenerationsFormat, Services: make([]agentapi.ServiceGeneration, 0, len(g.m))}
	for _, s := range g.m {
		f.Services = append(f.Services, s)
	}
	upto := g.changes
	g.mu.Unlock()
	sort.Slice(f.Services, func(i, j int) bool { return genKey(f.Services[i]) < genKey(f.Services[j]) })
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(g.path, append(b, '\n'), fsutil.FileMode); err != nil {
		return err
	}
	g.mu.Lock()
	g.written = upto
	g.mu.Unlock()
	return nil
}

func loadGenerations(path string) (*generations, error) {
	g := &generations{path: path, m: map[string]agentapi.ServiceGeneration{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return g, nil
	}
	if err != nil {
		return nil, &supervisor.StateError{Path: path, Err: err}
	}
	var f generationsFile
	if err := httpjson.Decode(b, &f); err != nil {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("invalid JSON: %w", err)}
	}
	if f.Format != GenerationsFormat {
		return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("format %q, want %q", f.Format, GenerationsFormat)}
	}
	for _, s := range f.Services {
		if s.Environment == "" || s.Service == "" || s.Generation < 0 || s.Fence < 0 || s.Fence > s.Generation {
			return nil, &supervisor.StateError{Path: path, Err: fmt.Errorf("service %s: invalid entry %+v", genKey(s), s)}
		}
		g.m[genKey(s)] = s
	}
	return g, nil
}

// list returns every service's generation, sorted.
func (g *generations) list() []agentapi.ServiceGeneration {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]agentapi.ServiceGeneration, 0, len(g.m))
	for _, s := range g.m {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return genKey(out[i]) < genKey(out[j]) })
	return out
}

// StoreBehindError is the refusal of a call whose expected generation is
// below the service's fence.
type StoreBehindError struct {
	Environment, Service string
	Expect, Fence        int64
	Generation           int64
}

func (e *StoreBehindError) Error() string {
	return fmt.Sprintf("%s %d is below %d, the generation of %s/%s a server already recorded (the agent is at %d): "+
		"the caller's store is behind this agent (restored from an older copy, or its WAL was lost) and must not act on %s/%s; "+
		"resync it from the agent first (runway server resync)",
		agentapi.ExpectGenerationHeader, e.Expect, e.Fence, e.Environment, e.Service, e.Generation, e.Environment, e.Service)
}

// admit fences a mutating call on env/service and takes the service's next
// generation for it. With a Runway-Expect-Generation header below the
// fence it refuses the call (409, ok false) and changes nothing; otherwise
// it raises the fence to the header's value and writes fence and new
// generation to disk before the call acts (one write, group-committed with
// other calls), so an agent killed during the call still fences older
// callers and never hands out a generation twice. A call that then fails
// has used its generation up: generations count admitted calls. Without
// the header the call is not fenced.
func (a *Agent) admit(w http.ResponseWriter, r *http.Request, env, service string) (generation int64, ok bool) {
	expect := int64(-1)
	if h := r.Header.Get(agentapi.ExpectGenerationHeader); h != "" {
		n, err := strconv.ParseInt(h, 10, 64)
		if err != nil || n < 0 {
			writeProblem(w, http.StatusBadRequest, "invalid-request", agentapi.ExpectGenerationHeader, "header %s %q: want a generation, a whole number from 0", agentapi.ExpectGenerationHeader, h)
			return 0, false
		}
		expect = n
	}
	g := a.gens
	g.mu.Lock()
	k := agentapi.ServiceGeneration{Environment: env, Service: service}
	cur := g.m[genKey(k)]
	if expect >= 0 && expect < cur.Fence {
		g.mu.Unlock()
		e := &StoreBehindError{Environment: env, Service: service, Expect: expect, Fence: cur.Fence, Generation: cur.Generation}
		a.log.Warn("refused a call from a caller whose store is behind", "service", genKey(k), "expect", expect, "fence", cur.Fence, "generation", cur.Generation,
			"call", r.Method+" "+r.URL.Path)
		writeProblem(w, http.StatusConflict, agentapi.ProblemStoreBehind, agentapi.ExpectGenerationHeader, "%s", e.Error())
		return 0, false
	}
	next := cur
	next.Environment, next.Service = env, service
	next.Fence = max(next.Fence, expect)
	// A caller that saw more than this agent remembers (its generations file
	// was lost or restored): generations stay monotonic for it.
	next.Generation = max(next.Generation, expect) + 1
	g.m[genKey(k)] = next
	g.changes++
	n := g.changes
	g.mu.Unlock()
	// If the write fails the call is refused; fence and generation stay
	// raised in memory, which only refuses more and never reuses a number.
	if err := g.persist(n); err != nil {
		writeError(w, fmt.Errorf("write generations file %s: %w", g.path, err))
		return 0, false
	}
	return next.Generation, true
}

// generated sets the Runway-Generation header of a call that acted (none
// for a call on an unknown group, which admitted nothing). Call it before
// the response's status is written.
func generated(w http.ResponseWriter, generation int64) {
	if generation > 0 {
		w.Header().Set(agentapi.GenerationHeader, strconv.FormatInt(generation, 10))
	}
}

// groupScope is the service of an existing group; ok is false when the
// group is unknown (the call then fails with 404 and changes nothing).
func (a *Agent) groupScope(name string) (env, service string, ok bool) {
	st, err := a.sup.Group(name)
	if err != nil {
		return "", "", false
	}
	return st.Spec.Environment, st.Spec.Service, true
}
