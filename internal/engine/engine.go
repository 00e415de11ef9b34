package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/config"
	"github.com/runwayhq/runway/internal/secrets"
	"github.com/runwayhq/runway/internal/store"
	"github.com/runwayhq/runway/internal/strategy"
	"github.com/runwayhq/runway/internal/target"
)

// State is a state of the release state machine.
type State string

// The states, in the order a successful release passes them, then the
// failure path.
const (
	StateValidate           State = "Validate"
	StateLock               State = "Lock"
	StateValidateResources  State = "ValidateResources"
	StateDeploy             State = "Deploy"
	StateCheckHealthy       State = "CheckHealthy"
	StateCleanUpSuccess     State = "CleanUpSuccess"
	StateReleaseLock        State = "ReleaseLock"
	StateSuccess            State = "Success"
	StateCleanUpFailure     State = "CleanUpFailure"
	StateReleaseLockFailure State = "ReleaseLockFailure"
	StateFailureClean       State = "FailureClean"
	StateFailureDirty       State = "FailureDirty"
)

// Final reports whether s is an end state.
func (s State) Final() bool {
	return s == StateSuccess || s == StateFailureClean || s == StateFailureDirty
}

// holdsLock reports whether a release in state s owns its service's lock.
func (s State) holdsLock() bool {
	switch s {
	case StateValidateResources, StateDeploy, StateCheckHealthy, StateCleanUpSuccess, StateCleanUpFailure:
		return true
	}
	return false
}

// Options tune an Engine; zero values are sensible defaults.
type Options struct {
	Logger *slog.Logger
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// PollInterval is how often waits look at the target and at halt
	// requests; 500 ms by default.
	PollInterval time.Duration
	// LockTTL is the lease of a service lock, renewed every third of it
	// while a release runs; 30 s by default.
	LockTTL time.Duration
	// CleanupTimeout bounds each clean-up state: its steps are retried until
	// then, after which the release ends FailureDirty; 10 min by default.
	CleanupTimeout time.Duration
	// TestFault is for tests only: called at every state boundary (step -1)
	// and step boundary, before (after false) and after it acts; returning
	// true stops the release's runner there at once, as if the server had
	// been killed. Production code leaves it nil.
	TestFault func(release string, state State, step int, after bool) bool
	// Observer, when set, is told how long states, steps and lock
	// acquisitions took (the server's Prometheus metrics).
	Observer Observer
	// Replica, when set, is this server's name among several sharing the
	// store: a release runs only on the replica that claims it
	// (store.ClaimRelease), and every write its runner makes carries the
	// claim's epoch (replica.go). Empty: the only server, no claims.
	Replica string
	// ClaimTTL is how long a replica's claim of a release holds unless
	// renewed (every third of it): after that another replica takes the
	// release over. 15 s by default.
	ClaimTTL time.Duration
}

// Observer is told what releases spend their time on. Durations are this
// engine's: a state resumed after a crash counts from the resume.
type Observer interface {
	// StateDone: a release left state s after took.
	StateDone(s State, took time.Duration)
	// StepDone: a step of kind finished (successfully) after took.
	StepDone(kind strategy.Kind, took time.Duration)
	// LockTried: taking a service's lock took took; held says another
	// release had it (the release then fails with LockExists).
	LockTried(took time.Duration, held bool)
}

type noObserver struct{}

func (noObserver) StateDone(State, time.Duration)          {}
func (noObserver) StepDone(strategy.Kind, time.Duration)   {}
func (noObserver) LockTried(took time.Duration, held bool) {}

// Request asks for a release of a service to an environment. Project,
// Environment, Protected and Target come from the server's copy of the
// project, never from a client.
type Request struct {
	Project     string
	Environment string
	// Protected environments refuse the recreate strategy.
	Protected bool
	// Target is the environment's target; its driver runs the release.
	Target string
	// Service is the manifest resolved for the environment.
	Service   config.Service
	Version   string // overrides Service.Version when set
	CreatedBy string
	// Sources are the manifest files the service was resolved from.
	Sources map[string]string
	// Secrets are the secret versions the release pins (resolved by the
	// server at submit): versions, never values.
	Secrets []secrets.Pin
	// ID is the release's id when the caller must know it before the
	// release is recorded (the API maps request ids to it first, so a
	// request retried after a crash finds or finishes its release); empty
	// means a new store.NewID. Submitting an id that exists fails with
	// store.ErrExists.
	ID string
}

// ReleaseSpec is the immutable snapshot stored as a release's Spec.
type ReleaseSpec struct {
	Project     string         `json:"project,omitempty"`
	Environment string         `json:"environment"`
	Protected   bool           `json:"protected"`
	Target      string         `json:"target,omitempty"`
	Service     config.Service `json:"service"`
	// Sources are the manifest files the release was made from, by name
	// (what the deploy request carried); the server parsed and validated
	// them into Service.
	Sources map[string]string `json:"sources,omitempty"`
	// Secrets are the secret versions the release's processes receive.
	Secrets []secrets.Pin `json:"secrets,omitempty"`
}

// Ref is the service the release is of.
func (s *ReleaseSpec) Ref() target.ServiceRef {
	return target.ServiceRef{Project: s.Project, Environment: s.Environment, Service: s.Service.Name}
}

// DecodeSpec reads a release's stored Spec.
func DecodeSpec(b []byte) (*ReleaseSpec, error) {
	var s ReleaseSpec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("decode release spec: %w", err)
	}
	return &s, nil
}

// Engine runs releases. It is safe for concurrent use.
type Engine struct {
	st   store.Store
	drv  Drivers
	log  *slog.Logger
	opts Options

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]bool
	closed  bool
	// epochs holds each running release's claim epoch (replicas only).
	epochs map[string]int64
	// waiting says, per release, what its current wait waits for; kept in
	// memory only (it changes at every poll): Waiting reads it.
	waiting map[string]string

	// fault, set only by tests, is called at every state and step boundary;
	// returning true makes the release's runner stop there at once, as if
	// the server had been killed.
	fault func(id string, p boundary) bool
}

// boundary is a point in a release's run: entering (After false) or leaving
// (After true) a state (Step -1) or one of its steps.
type boundary struct {
	State State
	Step  int
	After bool
}

func (b boundary) String() string {
	w := "before"
	if b.After {
		w = "after"
	}
	if b.Step < 0 {
		return fmt.Sprintf("%s %s", w, b.State)
	}
	return fmt.Sprintf("%s %s step %d", w, b.State, b.Step)
}

var errClosing = errors.New("engine closing")

// New returns an engine that keeps releases in st and acts through the
// driver of each release's target. Call Start to resume unfinished releases
// and Close to stop.
func New(st store.Store, drv Drivers, opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 500 * time.Millisecond
	}
	if opts.LockTTL <= 0 {
		opts.LockTTL = 30 * time.Second
	}
	if opts.CleanupTimeout <= 0 {
		opts.CleanupTimeout = 10 * time.Minute
	}
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	if opts.ClaimTTL <= 0 {
		opts.ClaimTTL = 15 * time.Second
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	e := &Engine{st: st, drv: drv, log: opts.Logger, opts: opts, ctx: ctx, cancel: cancel, running: map[string]bool{}, waiting: map[string]string{}, epochs: map[string]int64{}}
	if f := opts.TestFault; f != nil {
		e.fault = func(id string, b boundary) bool { return f(id, b.State, b.Step, b.After) }
	}
	return e
}

// Start resumes every unfinished release from its last persisted step.
func (e *Engine) Start(ctx context.Context) error {
	if e.opts.Replica != "" {
		e.startClaiming()
		return nil
	}
	rs, err := e.st.ListReleases(ctx, store.ReleaseFilter{Unfinished: true})
	if err != nil {
		return fmt.Errorf("resume releases: %w", err)
	}
	// Releases that held their service's lock take it back before any
	// runner starts: after an outage longer than the lease, a newer release
	// of the service must not grab the lock of one that is half done.
	for _, r := range rs {
		if State(r.State).holdsLock() {
			ref := target.ServiceRef{Project: r.Project, Environment: r.Environment, Service: r.Service}
			if _, err := e.st.AcquireLock(ctx, lockKey(ref), r.ID, e.opts.LockTTL); err != nil {
				e.log.Warn("take back service lock", "release", r.ID, "err", err)
			}
		}
	}
	for i := len(rs) - 1; i >= 0; i-- {
		e.log.Info("resuming release", "release", rs[i].ID, "service", rs[i].Service, "environment", rs[i].Environment, "state", rs[i].State, "step", rs[i].Step)
		e.launch(rs[i].ID)
	}
	return nil
}

// Submit records a new release and starts running it (a closed engine only
// records it; the next Start runs it). The release's outcome is in its
// record (Wait); Submit fails only if it cannot be recorded.
func (e *Engine) Submit(ctx context.Context, req Request) (*store.Release, error) {
	if req.Version != "" {
		req.Service.Version = req.Version
	}
	if _, err := e.drv.For(req.Target); err != nil {
		return nil, err
	}
	spec, err := json.Marshal(ReleaseSpec{Project: req.Project, Environment: req.Environment, Protected: req.Protected,
		Target: req.Target, Service: req.Service, Sources: req.Sources, Secrets: req.Secrets})
	if err != nil {
		return nil, fmt.Errorf("encode release: %w", err)
	}
	sum := sha256.Sum256(spec)
	now := e.opts.Now()
	id := req.ID
	if id == "" {
		id = store.NewID(now)
	}
	r := &store.Release{
		ID: id, Project: req.Project, Environment: req.Environment, Service: req.Service.Name,
		Version: req.Service.Version, CreatedBy: req.CreatedBy, CreatedAt: now,
		Digest: "sha256:" + hex.EncodeToString(sum[:]), Spec: spec,
		Progress: store.Progress{State: string(StateValidate)},
	}
	if err := e.st.CreateRelease(ctx, r); err != nil {
		return nil, fmt.Errorf("record release: %w", err)
	}
	e.event(ctx, r.ID, StateValidate, -1, "release submitted", nil)
	if e.opts.Replica != "" {
		// The replica that records a release runs it, unless it cannot
		// claim it now: then another replica's scan (or its own) will.
		e.claimAndLaunch(ctx, r.ID)
		return r, nil
	}
	e.launch(r.ID)
	return r, nil
}

// Halt asks a release to stop at its next step boundary and clean up.
func (e *Engine) Halt(ctx context.Context, id, reason string) error {
	if reason == "" {
		reason = "halt requested"
	}
	if err := e.st.RequestHalt(ctx, id, reason); err != nil {
		return fmt.Errorf("halt release %s: %w", id, err)
	}
	return nil
}

// Wait returns the release's record once it has reached an end state.
func (e *Engine) Wait(ctx context.Context, id string) (*store.Release, error) {
	t := time.NewTicker(e.opts.PollInterval)
	defer t.Stop()
	for {
		r, err := e.st.GetRelease(ctx, id)
		if err != nil {
			return nil, err
		}
		if r.Done {
			return r, nil
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-t.C:
		}
	}
}

// Waiting says what release id waits for right now ("analysis waits for
// traffic: 12/100 requests", "waiting for 2 of 3 instances of hello-01j… to
// be healthy"), or "" when it is not in a wait (or runs on another server).
// `runway deploy --wait` and `runway events` show it.
func (e *Engine) Waiting(id string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.waiting[id]
}

func (e *Engine) setWaiting(id, why string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if why == "" {
		delete(e.waiting, id)
		return
	}
	e.waiting[id] = why
}

// Close stops every runner at its current step without recording anything,
// as a crash would; Start on a new engine resumes them.
func (e *Engine) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel(errClosing)
	e.wg.Wait()
}

func (e *Engine) launch(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.running[id] {
		return
	}
	e.running[id] = true
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.running, id)
			delete(e.waiting, id)
			delete(e.epochs, id)
			e.mu.Unlock()
		}()
		e.run(e.ctx, id)
	}()
}

// event records a fact about a release. Events are informative: the
// progress record is what resumes, so a failed append is only logged.
func (e *Engine) event(ctx context.Context, id string, s State, step int, msg string, data any) {
	var b []byte
	if data != nil {
		b, _ = json.Marshal(data)
	}
	if err := e.st.AppendEvent(ctx, &store.Event{ReleaseID: id, At: e.opts.Now(), State: string(s), Step: step, Message: msg, Data: b, Epoch: e.epoch(id)}); err != nil {
		e.log.Warn("record release event", "release", id, "err", err)
	}
}

func lockKey(ref target.ServiceRef) string { return "service/" + ref.String() }

// LockKey is the store key of the lock of a service (`runway server resync`
// frees a lock held by a release it ends).
func LockKey(ref target.ServiceRef) string { return lockKey(ref) }
