// Package audit keeps Runway's tamper-evident audit log: every mutating API
// call (and, with secrets, every secret read) appends an entry {seq, time,
// actor, token id, source address, action, target, request digest,
// outcome}.
//
// Entries are hash-chained: an entry's hash covers its fields and the hash of
// the entry before it, so editing, deleting or reordering any entry breaks
// every link after it. The table refuses UPDATE and DELETE by triggers, and
// Verify checks the triggers still exist. Deleting the newest entries (or
// the whole table) leaves a consistent shorter chain, so the chain's head
// (seq and hash of the newest entry) is also written, fsynced, to a file
// beside the database after every append; Verify compares the table with it.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/store"
)

// HeadFile is the name of the chain-head file beside the database.
const HeadFile = "audit.head"

// Triggers are the triggers that keep the audit table append-only.
var Triggers = []string{"audit_no_delete", "audit_no_update"}

// Log appends to and verifies the audit log of one server.
type Log struct {
	st       store.Store
	headPath string
	mu       sync.Mutex // orders appends with their head writes
	// shared: other servers append to the same table (replicas on one
	// PostgreSQL), so the head file holds this server's newest append and
	// the table may hold more after it.
	shared bool
}

// New returns the log kept in st, whose head file is headPath.
func New(st store.Store, headPath string) *Log { return &Log{st: st, headPath: headPath} }

// NewShared returns the log of one of several servers appending to st: its
// head file records the newest entry this server appended, and Verify
// checks that the table still holds that entry, unchanged, with every
// entry before it (entries after it are other servers'). So deleting or
// rewriting what this server saw is still detected; truncating only
// entries no server's head records is not, on this server.
func NewShared(st store.Store, headPath string) *Log {
	return &Log{st: st, headPath: headPath, shared: true}
}

// Hash is an entry's hash: SHA-256 over its fields and the previous hash.
func Hash(e *store.AuditEntry) string {
	b, _ := json.Marshal([]any{e.Seq, e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.TokenID, e.Source, e.Action,
		e.Project, e.Environment, e.Target, e.RequestDigest, e.Outcome, e.PrevHash})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Append records e and then the new head.
func (l *Log) Append(ctx context.Context, e *store.AuditEntry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	if err := l.st.AppendAudit(ctx, e, Hash); err != nil {
		return err
	}
	return l.writeHead(e.Seq, e.Hash)
}

// AppendWith makes a change and records e in one transaction: change runs
// first, and if it fails nothing of it, nor e, is stored. The head file is
// written after the commit.
func (l *Log) AppendWith(ctx context.Context, e *store.AuditEntry, change func(store.IdentityTx) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.At.IsZero() {
		e.At = time.Now()
	}
	e.At = e.At.UTC()
	err := l.st.InIdentityTx(ctx, func(tx store.IdentityTx) error {
		if err := change(tx); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, e, Hash)
	})
	if err != nil {
		return err
	}
	return l.writeHead(e.Seq, e.Hash)
}

func (l *Log) writeHead(seq int64, hash string) error {
	if err := fsutil.WriteFileAtomic(l.headPath, fmt.Appendf(nil, "%d %s\n", seq, hash), fsutil.FileMode); err != nil {
		return fmt.Errorf("write audit head %s: %w", l.headPath, err)
	}
	return nil
}

// Head is the newest entry as the head file records it.
type Head struct {
	Seq  int64
	Hash string
}

// ReadHead reads the head file; a missing file is the empty chain.
func (l *Log) ReadHead() (Head, error) {
	b, err := os.ReadFile(l.headPath)
	if errors.Is(err, fs.ErrNotExist) {
		return Head{}, nil
	}
	if err != nil {
		return Head{}, err
	}
	return ParseHead(b)
}

// ParseHead parses the content of a head file: "<seq> <hash>\n".
func ParseHead(b []byte) (Head, error) {
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Head{}, fmt.Errorf("audit head: want \"<seq> <hash>\", got %d fields", len(f))
	}
	seq, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || seq < 0 {
		return Head{}, fmt.Errorf("audit head: seq %q is not a whole number", trunc(f[0]))
	}
	if len(f[1]) != 64 || strings.Trim(f[1], "0123456789abcdef") != "" {
		return Head{}, errors.New("audit head: hash is not 64 hex digits")
	}
	return Head{Seq: seq, Hash: f[1]}, nil
}

func trunc(s string) string {
	if len(s) > 32 {
		return s[:32] + "..."
	}
	return s
}

// Report is the result of Verify.
type Report struct {
	OK      bool   `json:"ok"`
	Entries int    `json:"entries"`
	HeadSeq int64  `json:"head_seq"`
	BadSeq  int64  `json:"bad_seq,omitempty"` // the first bad entry (0 when the fault is not one entry's)
	Problem string `json:"problem,omitempty"`
}

// Verify recomputes the chain from the first entry and compares its end
// with the head file; it names the first entry that does not fit, and any
// missing trigger.
func (l *Log) Verify(ctx context.Context) (rep *Report, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	rep = &Report{}
	trig, err := l.st.AuditTriggers(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, t := range trig {
		have[t] = true
	}
	// A missing trigger is reported after the first bad entry, which is
	// what a reader needs most.
	var missing []string
	for _, t := range Triggers {
		if !have[t] {
			missing = append(missing, t)
		}
	}
	defer func() {
		if rep == nil || len(missing) == 0 {
			return
		}
		p := fmt.Sprintf("trigger %s that keeps the audit log append-only is missing: the table may have been edited", strings.Join(missing, " and "))
		if rep.Problem == "" {
			rep.Problem = p
		} else {
			rep.Problem += "; also " + p
		}
		rep.OK = false
	}()
	rows, err := l.st.AuditRows(ctx)
	if err != nil {
		return nil, err
	}
	rep.Entries = len(rows)
	prev := ""
	for i, e := range rows {
		want := int64(i + 1)
		switch {
		case e.Seq != want:
			rep.BadSeq, rep.Problem = want, fmt.Sprintf("entry %d is missing or out of order (found entry %d in its place): entries were deleted or reordered", want, e.Seq)
		case e.PrevHash != prev:
			rep.BadSeq, rep.Problem = e.Seq, fmt.Sprintf("entry %d does not link to entry %d: an entry before it was edited, deleted or reordered", e.Seq, e.Seq-1)
		case Hash(e) != e.Hash:
			rep.BadSeq, rep.Problem = e.Seq, fmt.Sprintf("entry %d was edited: its content does not match its hash", e.Seq)
		}
		if rep.Problem != "" {
			return rep, nil
		}
		prev = e.Hash
	}
	head, err := l.ReadHead()
	if err != nil {
		rep.Problem = fmt.Sprintf("the head file %s is unreadable: %v", l.headPath, err)
		return rep, nil
	}
	rep.HeadSeq = head.Seq
	last := int64(len(rows))
	switch {
	case head.Seq > last:
		rep.BadSeq, rep.Problem = last+1, fmt.Sprintf("the head file records %d entries but the table holds %d: entries from %d on were deleted (the table was truncated)", head.Seq, last, last+1)
	case head.Seq < last && l.shared:
		if head.Seq > 0 && rows[head.Seq-1].Hash != head.Hash {
			rep.BadSeq, rep.Problem = head.Seq, fmt.Sprintf("entry %d does not match the head file's hash: the chain was rewritten", head.Seq)
		}
	case head.Seq < last:
		rep.BadSeq, rep.Problem = head.Seq+1, fmt.Sprintf("the table holds %d entries but the head file records %d: entries from %d on were not appended by the server, or the head file was replaced", last, head.Seq, head.Seq+1)
	case last > 0 && rows[last-1].Hash != head.Hash:
		rep.BadSeq, rep.Problem = last, fmt.Sprintf("entry %d does not match the head file's hash: the chain was rewritten", last)
	}
	rep.OK = rep.Problem == ""
	return rep, nil
}
