// Package store persists Runway's control-plane state: releases and their
// events, leases (locks with an owner and an expiry), projects, users and
// their tokens (hashes only), the audit log, and a small key/value table for
// everything else. Store is the narrow interface the rest of Runway
// uses; SQLite is its embedded implementation, and the interface uses nothing
// a PostgreSQL implementation could not provide.
//
// It is a leaf package: it imports nothing of Runway's.
package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Errors callers decide on.
var (
	ErrNotFound = errors.New("not found")
	// ErrLockHeld: another owner holds an unexpired lease. Returned wrapped in
	// a *LockHeldError that names the holder.
	ErrLockHeld = errors.New("lock held by another owner")
	// ErrNotOwner: the lease is not (or no longer) held by the caller.
	ErrNotOwner = errors.New("lock not held by this owner")
	// ErrFinished: a finished release's progress cannot change.
	ErrFinished = errors.New("release already finished")
	// ErrExists: a record with this id already exists.
	ErrExists = errors.New("already exists")
	// ErrConflict: a write based on a version that is no longer current.
	ErrConflict = errors.New("changed concurrently")
	// ErrFenced: a runner's write (SaveProgress, AppendEvent) carries an
	// epoch that is no longer its release's: another replica claimed the
	// release since, and only its runner may write.
	ErrFenced = errors.New("refused by fencing: another replica runs the release now")
)

// Store is Runway's persistence. Every method is safe for concurrent use.
type Store interface {
	// CreateRelease stores a new release; r.ID must be set (NewID).
	CreateRelease(ctx context.Context, r *Release) error
	GetRelease(ctx context.Context, id string) (*Release, error)
	// ListReleases returns releases newest first.
	ListReleases(ctx context.Context, f ReleaseFilter) ([]*Release, error)
	// SaveProgress replaces the progress of an unfinished release and, in the
	// same transaction, appends the events given (so the event log never
	// misses or invents a state the release was recorded in).
	SaveProgress(ctx context.Context, id string, p Progress, events ...*Event) error
	// RequestHalt marks a release to stop at its next step boundary.
	RequestHalt(ctx context.Context, id, reason string) error
	// ClaimRelease makes owner (a replica) the runner of an unfinished
	// release until now+ttl and returns the claim's epoch, one more than the
	// release's last: it succeeds when nobody runs the release, its runner's
	// claim lapsed, or owner runs it already; otherwise a *LockHeldError
	// names the runner. ErrFinished when the release ended.
	ClaimRelease(ctx context.Context, id, owner string, ttl time.Duration) (epoch int64, err error)
	// RenewClaim extends owner's claim of epoch to now+ttl; ErrFenced when
	// the release was claimed since (or ended).
	RenewClaim(ctx context.Context, id, owner string, epoch int64, ttl time.Duration) error
	// LiveReleases returns, for every (project, environment, service), its
	// newest release that did not end FailureClean: the one that serves or is
	// about to. Hosts and other claims of a service are read from it.
	LiveReleases(ctx context.Context) ([]*Release, error)

	// PutProject stores a project's definition; p.Version must be the stored
	// version plus one (1 for a new project), else ErrConflict: two applies
	// racing never both win.
	PutProject(ctx context.Context, p *Project) error
	// GetProject returns a project; ErrNotFound when it was never applied.
	GetProject(ctx context.Context, name string) (*Project, error)
	// ListProjects returns every project by name.
	ListProjects(ctx context.Context) ([]*Project, error)

	AppendEvent(ctx context.Context, e *Event) error
	// ListEvents returns a release's events in the order they were appended.
	ListEvents(ctx context.Context, releaseID string) ([]*Event, error)
	// AppendServiceEvent records a fact about a service that is not a step
	// of a release (an instance exited, a project was applied).
	AppendServiceEvent(ctx context.Context, e *ServiceEvent) error
	// Feed returns release events and service events merged, oldest first.
	Feed(ctx context.Context, f FeedFilter) ([]*FeedEvent, error)
	// CountReleases returns how many releases ended in each state, and how
	// many have not ended yet.
	CountReleases(ctx context.Context) (ended map[string]int64, unfinished int64, err error)

	// PutAlarmState records an alarm's state; DeleteAlarmState forgets it;
	// ListAlarmStates returns the states f selects.
	PutAlarmState(ctx context.Context, a *AlarmState) error
	DeleteAlarmState(ctx context.Context, project, environment, service, name string) error
	ListAlarmStates(ctx context.Context, f AlarmFilter) ([]*AlarmState, error)
	// AddNotification records a webhook delivery to make, UpdateNotification
	// an attempt's outcome; ListNotifications returns the due ones or a
	// scope's newest.
	AddNotification(ctx context.Context, n *Notification) error
	UpdateNotification(ctx context.Context, n *Notification) error
	ListNotifications(ctx context.Context, f NotificationFilter) ([]*Notification, error)

	// AcquireLock takes the lease on key for owner until now+ttl. It succeeds
	// when the lease is free, expired, or already the owner's (then it is
	// renewed); otherwise it returns a *LockHeldError.
	AcquireLock(ctx context.Context, key, owner string, ttl time.Duration) (Lease, error)
	// RenewLock extends the owner's lease to now+ttl; ErrNotOwner when
	// another owner has it or it was released. An expired lease nobody took
	// is still the owner's.
	RenewLock(ctx context.Context, key, owner string, ttl time.Duration) (Lease, error)
	// ReleaseLock frees the owner's lease; ErrNotOwner otherwise.
	ReleaseLock(ctx context.Context, key, owner string) error
	GetLock(ctx context.Context, key string) (Lease, error)
	// ListLocks returns every lease, expired ones included.
	ListLocks(ctx context.Context) ([]Lease, error)

	// Get, Put and Delete a value in a namespace of the key/value table.
	Get(ctx context.Context, namespace, key string) ([]byte, error)
	Put(ctx context.Context, namespace, key string, value []byte) error
	Delete(ctx context.Context, namespace, key string) error
	// PutIfAbsent stores value unless the key exists; then it returns the
	// stored value and false. Of concurrent callers exactly one stores.
	PutIfAbsent(ctx context.Context, namespace, key string, value []byte) (prev []byte, stored bool, err error)

	// CreateUser stores a new user; ErrExists when the name is taken.
	CreateUser(ctx context.Context, u *User) error
	// GetUser returns a user; ErrNotFound when there is none of that name.
	GetUser(ctx context.Context, name string) (*User, error)
	// ListUsers returns every user by name.
	ListUsers(ctx context.Context) ([]*User, error)
	// UpdateUser replaces a user's roles and disabled flag; ErrNotFound when
	// there is no such user.
	UpdateUser(ctx context.Context, u *User) error

	// CreateToken stores a token (its hash); ErrExists when id or hash exist.
	CreateToken(ctx context.Context, t *Token) error
	// TokenByHash finds a token by its hash; ErrNotFound when none has it.
	TokenByHash(ctx context.Context, hash string) (*Token, error)
	// GetToken returns a token by id; ErrNotFound when there is none.
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListTokens returns the tokens of a user (every user's when user is
	// empty), oldest first.
	ListTokens(ctx context.Context, user string) ([]*Token, error)
	// RevokeToken marks a token revoked now; ErrNotFound when there is no
	// such token, ErrFinished when it was already revoked.
	RevokeToken(ctx context.Context, id string) error
	// TouchToken records when a token was last used.
	TouchToken(ctx context.Context, id string, at time.Time) error

	// InIdentityTx runs fn in one transaction: the users and tokens it
	// writes and the audit entries it appends are stored together, or (fn
	// failing) none of them.
	InIdentityTx(ctx context.Context, fn func(IdentityTx) error) error
	// AppendAudit appends e to the audit log in one transaction: it sets
	// e.Seq (the last entry's plus one) and e.PrevHash (the last entry's
	// hash), then e.Hash = seal(e).
	AppendAudit(ctx context.Context, e *AuditEntry, seal AuditSeal) error
	// ListAudit returns the entries that match f in seq order.
	ListAudit(ctx context.Context, f AuditFilter) ([]*AuditEntry, error)
	// AuditRows returns every audit entry in storage order, for verification.
	AuditRows(ctx context.Context) ([]*AuditEntry, error)
	// AuditTriggers names the triggers that keep the audit table append-only.
	AuditTriggers(ctx context.Context) ([]string, error)

	Close() error
}

// Release is an immutable snapshot of what to deploy plus the engine's
// progress in deploying it.
type Release struct {
	ID          string
	Project     string
	Environment string
	Service     string
	Version     string
	CreatedBy   string
	CreatedAt   time.Time
	Digest      string
	Spec        []byte // the resolved manifest, JSON; never changes

	Progress
	HaltRequested bool
	HaltReason    string
	// Runner is the replica that claimed the release last, until
	// RunnerUntil; RunnerEpoch is that claim's (docs/design.md, "Several
	// servers"). Written by ClaimRelease only.
	Runner      string
	RunnerUntil time.Time
	RunnerEpoch int64
	// Generation is the agent generation of the release's service recorded
	// when its progress was last saved (docs/design.md, "Fencing"); written
	// by the store, never by the engine.
	Generation int64
}

// Progress is the part of a release the engine rewrites, before every action.
type Progress struct {
	State         string
	Step          int       // index of the current step in the state's phase
	StepStartedAt time.Time // when the current step first started
	Plan          []byte    // the strategy's plan, JSON, written once
	ErrorKind     string
	Error         string
	Deadline      time.Time
	Served        int64
	Failed        int64
	Done          bool // a final state was reached; progress is frozen
	UpdatedAt     time.Time
	FinishedAt    time.Time
	// Epoch is the claim of the runner that writes (ClaimRelease):
	// SaveProgress refuses it with ErrFenced unless it is the release's
	// current epoch. 0 writes unfenced (a server without replicas).
	Epoch int64
}

// ReleaseFilter selects releases; zero fields match everything.
type ReleaseFilter struct {
	Project     string
	Environment string
	Service     string
	Unfinished  bool
	Limit       int
}

// Project is a project's definition as applied: runway.hcl's source. The
// server parses it (config.ParseProjectSource) wherever it needs policy.
type Project struct {
	Name      string
	Source    []byte
	Digest    string
	Version   int
	UpdatedBy string
	UpdatedAt time.Time
}

// Event is a timestamped fact about a release: a state entered, a step
// started or finished, an observation.
type Event struct {
	ID        string
	ReleaseID string
	At        time.Time
	State     string
	Step      int
	Message   string
	Data      []byte // optional JSON
	// Epoch, when not 0, makes AppendEvent refuse the event (ErrFenced)
	// unless it is the release's current claim epoch (Progress.Epoch).
	Epoch int64
}

// Lease is a lock held by Owner until ExpiresAt.
type Lease struct {
	Key        string
	Owner      string
	AcquiredAt time.Time
	ExpiresAt  time.Time
}

// LockHeldError names who holds a lease. errors.Is(err, ErrLockHeld) is true.
type LockHeldError struct{ Lease Lease }

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("lock %s is held by %s until %s", e.Lease.Key, e.Lease.Owner, e.Lease.ExpiresAt.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrLockHeld) true.
func (e *LockHeldError) Unwrap() error { return ErrLockHeld }

var (
	idMu      sync.Mutex
	idEntropy = ulid.Monotonic(rand.Reader, 0)
	idLastMS  uint64
)

// IDAt returns the smallest id NewID can make at t: every id made at t or
// later is not smaller, every id made before t is smaller.
func IDAt(t time.Time) string {
	var u ulid.ULID
	if err := u.SetTime(ulid.Timestamp(t)); err != nil {
		panic(err) // only for times after the year 10889
	}
	return u.String()
}

// NewID returns a new ULID; ids made by one process sort in creation order
// (the order of the calls), even when a caller passes a time taken before
// another caller's: a time older than the last id's is taken as that id's
// millisecond. (An event whose time was read before a follower made its
// cursor, but whose id was made after, must still sort after the cursor.)
func NewID(now time.Time) string {
	idMu.Lock()
	defer idMu.Unlock()
	ms := ulid.Timestamp(now)
	if ms < idLastMS {
		ms = idLastMS
	}
	idLastMS = ms
	return ulid.MustNew(ms, idEntropy).String()
}
