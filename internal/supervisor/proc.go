package supervisor

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/runwayhq/runway/internal/procfs"
)

// bootTime is when the machine booted, to turn start ticks into times.
var bootTime = func() time.Time {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(n, 0)
		}
	}
	return time.Time{}
}()

// groupMembers lists the live (non-zombie) processes of process group pgid.
func groupMembers(pgid int) []int {
	if pgid <= 1 {
		return nil // no group (kernel threads have pgid 0)
	}
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil || st.PGID != pgid || st.State == 'Z' || st.State == 'X' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// procEnv reads the initial environment of pid.
func procEnv(pid int) map[string]string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil
	}
	env := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			env[k] = v
		}
	}
	return env
}

// findAgentProcesses returns the main process of every instance of the
// agent agentID that runs, keyed by instance id: the process-group leader
// that carries the instance's marker (RUNWAY_AGENT_ID, RUNWAY_INSTANCE).
// Its descendants carry the marker too; one that left the group with
// setsid leads its own session, which the main process never does (it was
// started with Setpgid in the agent's session, and a group leader cannot
// call setsid), so it is never taken for the instance. Of several
// candidates (a descendant that called setpgid), the oldest wins.
func findAgentProcesses(agentID string) map[string]int {
	out := map[string]int{}
	started := map[string]uint64{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		st, err := procfs.ReadStat(pid)
		if err != nil || st.PGID != pid || st.Session == pid || st.State == 'Z' {
			continue
		}
		env := procEnv(pid)
		id := env["RUNWAY_INSTANCE"]
		if env["RUNWAY_AGENT_ID"] != agentID || id == "" {
			continue
		}
		if prev, ok := started[id]; ok && prev <= st.StartTicks {
			continue
		}
		out[id], started[id] = pid, st.StartTicks
	}
	return out
}

// instanceProcesses lists the live processes that carry the marker of
// instance id of agent agentID in their environment: the instance's main
// process and every descendant, including those that left its process group
// (setsid, setpgid) and would otherwise outlive it.
func instanceProcesses(agentID, id string) []int {
	return markedByInstance(agentID)[id]
}

// markedByInstance lists the live processes of agent agentID by the
// instance id in their marker.
func markedByInstance(agentID string) map[string][]int {
	out := map[string][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	agentKV := []byte("RUNWAY_AGENT_ID=" + agentID)
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !hasEnv(b, agentKV) {
			continue
		}
		id := envValue(b, "RUNWAY_INSTANCE")
		if id == "" {
			continue
		}
		if st, err := procfs.ReadStat(pid); err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		out[id] = append(out[id], pid)
	}
	return out
}

func envValue(b []byte, key string) string {
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := bytes.Cut(kv, []byte("=")); ok && string(k) == key {
			return string(v)
		}
	}
	return ""
}

// hasEnv reports whether the NUL-separated environment b holds kv exactly.
func hasEnv(b, kv []byte) bool {
	for len(b) > 0 {
		var v []byte
		if i := bytes.IndexByte(b, 0); i >= 0 {
			v, b = b[:i], b[i+1:]
		} else {
			v, b = b, nil
		}
		if bytes.Equal(v, kv) {
			return true
		}
	}
	return false
}

// cgroupProcs lists the processes in the cgroup directories dirs.
func cgroupProcs(dirs []string) []int {
	var out []int
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "cgroup.procs"))
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil && pid > 0 {
				out = append(out, pid)
			}
		}
	}
	return out
}

// usage is a CPU and memory sample of one process.
type usage struct {
	at    time.Time
	ticks uint64
}

func sampleUsage(pid int) (ticks uint64, rss int64, err error) {
	st, err := procfs.ReadStat(pid)
	if err != nil {
		return 0, 0, err
	}
	return st.UTime + st.STime, st.RSSPages * int64(os.Getpagesize()), nil
}

func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("refusing to signal process group %d", pgid)
	}
	err := syscall.Kill(-pgid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
