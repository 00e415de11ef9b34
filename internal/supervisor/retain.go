package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"time"

	"github.com/runwayhq/runway/internal/agentapi"
	"github.com/runwayhq/runway/internal/fsutil"
	"github.com/runwayhq/runway/internal/httpjson"
)

// Logs outlive their group: the logs of removed instances and deleted
// groups stay in DATA_DIR/logs/<group>/, described by its group.json, and
// stay readable (ReadLogs, LogGroups) until they are pruned. The line that
// says why a failed release's instances crashed must survive the clean-up
// that deletes them.
//
// Retention, per service (environment and service): the logs of a deleted
// group are kept for RetainFor after its deletion and while it is one of
// the service's RetainGroups most recently deleted groups, whichever ends
// first; within a group, the logs of its RetainGroups most recently removed
// instances are kept besides those of its live ones. Each instance's log is
// size-capped by rotation as before (LogMaxBytes x LogFiles).
const (
	RetainGroups = 10
	RetainFor    = 7 * 24 * time.Hour
)

// LogMetaFormat is the format tag of DATA_DIR/logs/<group>/group.json.
const LogMetaFormat = "runway-agent-group-logs/1"

const logMetaFile = "group.json"

var (
	groupNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	instanceIDRE = regexp.MustCompile(`^[0-9a-f]{8}$`)
)

func (s *Supervisor) logDir(group string) string {
	return filepath.Join(s.opts.DataDir, "logs", group)
}

func readLogMeta(path string) (agentapi.LogGroup, error) {
	var m agentapi.LogGroup
	b, err := os.ReadFile(path)
	if err != nil {
		return m, err
	}
	if err := httpjson.Decode(b, &m); err != nil {
		return m, fmt.Errorf("%s: invalid JSON: %w", path, err)
	}
	if m.Format != LogMetaFormat {
		return m, fmt.Errorf("%s: format %q, want %q", path, m.Format, LogMetaFormat)
	}
	return m, nil
}

// syncLogMeta records the group's live instances in its group.json, marks
// those that left as removed (deleted: all of them, and the group), and
// drops the logs of removed instances beyond RetainGroups.
func (s *Supervisor) syncLogMeta(g *group, deleted bool) {
	s.mu.Lock()
	spec, created := g.spec, g.createdAt
	live := map[string]int{}
	for _, in := range g.instances {
		live[in.id] = in.index
	}
	s.mu.Unlock()
	s.logMu.Lock()
	defer s.logMu.Unlock()
	dir := s.logDir(spec.Name)
	path := filepath.Join(dir, logMetaFile)
	m, err := readLogMeta(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("log index of a group unreadable: rewriting it", "path", path, "err", err)
	}
	m = agentapi.LogGroup{Format: LogMetaFormat, Group: spec.Name, Project: spec.Project, Service: spec.Service,
		Environment: spec.Environment, ReleaseID: spec.ReleaseID, Version: spec.Version, CreatedAt: created,
		Instances: m.Instances}
	now := time.Now().UTC()
	if deleted {
		m.DeletedAt = now
		live = nil
	}
	seen := map[string]bool{}
	for i := range m.Instances {
		li := &m.Instances[i]
		seen[li.ID] = true
		if _, ok := live[li.ID]; ok {
			li.RemovedAt = time.Time{}
		} else if li.RemovedAt.IsZero() {
			li.RemovedAt = now
		}
	}
	for id, idx := range live {
		if !seen[id] {
			m.Instances = append(m.Instances, agentapi.LogInstance{ID: id, Index: idx})
		}
	}
	// Live first (by index), then removed, newest first; removed ones beyond
	// RetainGroups lose their logs.
	sort.SliceStable(m.Instances, func(i, j int) bool {
		a, b := m.Instances[i], m.Instances[j]
		if a.RemovedAt.IsZero() != b.RemovedAt.IsZero() {
			return a.RemovedAt.IsZero()
		}
		if !a.RemovedAt.Equal(b.RemovedAt) {
			return a.RemovedAt.After(b.RemovedAt)
		}
		return a.Index < b.Index
	})
	// Those removed just now are always kept: the last instances of a
	// deleted group are the ones whose logs say why.
	removed := 0
	keep := m.Instances[:0]
	for _, li := range m.Instances {
		if !li.RemovedAt.IsZero() {
			removed++
			if removed > RetainGroups && !li.RemovedAt.Equal(now) {
				s.removeInstanceLogs(spec.Name, li.ID)
				continue
			}
		}
		keep = append(keep, li)
	}
	m.Instances = keep
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return
	}
	if err := os.MkdirAll(dir, fsutil.DirMode); err != nil {
		s.log.Error("write the log index of a group", "path", path, "err", err)
		return
	}
	if err := fsutil.WriteFileAtomic(path, append(b, '\n'), fsutil.FileMode); err != nil {
		s.log.Error("write the log index of a group", "path", path, "err", err)
	}
}

func (s *Supervisor) removeInstanceLogs(group, id string) {
	for _, p := range logFiles(s.logPath(group, id), s.opts.LogFiles) {
		os.Remove(p)
	}
}

// LogGroups lists the groups whose logs are kept, live and deleted, of one
// service ("" matches every environment or service), newest first.
func (s *Supervisor) LogGroups(environment, service string) []agentapi.LogGroup {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	var out []agentapi.LogGroup
	for _, m := range s.readAllLogMeta() {
		if (environment == "" || m.Environment == environment) && (service == "" || m.Service == service) {
			out = append(out, m)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.After(out[j].CreatedAt)
		}
		return out[i].Group < out[j].Group
	})
	return out
}

// readAllLogMeta reads every group.json (s.logMu held).
func (s *Supervisor) readAllLogMeta() []agentapi.LogGroup {
	ents, err := os.ReadDir(filepath.Join(s.opts.DataDir, "logs"))
	if err != nil {
		return nil
	}
	var out []agentapi.LogGroup
	for _, e := range ents {
		if !e.IsDir() || !groupNameRE.MatchString(e.Name()) {
			continue
		}
		m, err := readLogMeta(filepath.Join(s.logDir(e.Name()), logMetaFile))
		if err != nil || m.Group != e.Name() {
			continue
		}
		out = append(out, m)
	}
	return out
}

// pruneLogs removes the logs of deleted groups beyond the retention: per
// service, older than RetainFor or beyond its RetainGroups most recently
// deleted groups.
func (s *Supervisor) pruneLogs(now time.Time) {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	byService := map[string][]agentapi.LogGroup{}
	for _, m := range s.readAllLogMeta() {
		if m.DeletedAt.IsZero() {
			continue
		}
		k := m.Environment + "/" + m.Service
		byService[k] = append(byService[k], m)
	}
	for _, gs := range byService {
		sort.Slice(gs, func(i, j int) bool { return gs[i].DeletedAt.After(gs[j].DeletedAt) })
		for i, m := range gs {
			if i < RetainGroups && now.Sub(m.DeletedAt) < RetainFor {
				continue
			}
			s.mu.Lock()
			_, live := s.groups[m.Group]
			s.mu.Unlock()
			if live {
				continue // re-created under the same name meanwhile
			}
			if err := os.RemoveAll(s.logDir(m.Group)); err != nil {
				s.log.Warn("prune the logs of a deleted group", "group", m.Group, "err", err)
				continue
			}
			s.log.Info("pruned the logs of a deleted group", "group", m.Group, "service", m.Service,
				"environment", m.Environment, "deleted_at", m.DeletedAt)
		}
	}
}

// retainedLog reports whether the logs of instance id of group are kept
// on disk (the group or the instance may be gone).
func (s *Supervisor) retainedLog(group, id string) bool {
	if !groupNameRE.MatchString(group) || !instanceIDRE.MatchString(id) {
		return false
	}
	for _, p := range logFiles(s.logPath(group, id), s.opts.LogFiles) {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
