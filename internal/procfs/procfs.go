// Package procfs reads what Runway needs of a process from Linux's /proc:
// its state, parent, group, session, start time, CPU time and resident
// memory. The supervisor watches its instances with it and the local
// target its task processes (re-attached by pid and start time after a
// crash). It is a leaf: it imports nothing of Runway's.
package procfs

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
)

// Stat is the part of /proc/<pid>/stat Runway uses.
type Stat struct {
	State      byte
	PPID       int
	PGID       int
	Session    int
	UTime      uint64 // clock ticks
	STime      uint64
	StartTicks uint64 // start time after boot, in clock ticks
	RSSPages   int64
}

// ClockTicks is USER_HZ, 100 on every Linux the agent targets.
const ClockTicks = 100

// ReadStat reads /proc/<pid>/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses the text of a /proc/<pid>/stat file.
func ParseStat(b []byte) (Stat, error) {
	// The command name (field 2) is in parentheses and may contain spaces.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return Stat{}, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 22 {
		return Stat{}, errors.New("short /proc stat")
	}
	var st Stat
	st.State = f[0][0]
	st.PPID, _ = strconv.Atoi(f[1])
	st.PGID, _ = strconv.Atoi(f[2])
	st.Session, _ = strconv.Atoi(f[3])
	st.UTime, _ = strconv.ParseUint(f[11], 10, 64)
	st.STime, _ = strconv.ParseUint(f[12], 10, 64)
	st.StartTicks, _ = strconv.ParseUint(f[19], 10, 64)
	st.RSSPages, _ = strconv.ParseInt(f[21], 10, 64)
	return st, nil
}

// ProcessAlive reports whether pid is a live (non-zombie) process that
// started at startTicks: a recycled pid has another start time.
func ProcessAlive(pid int, startTicks uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := ReadStat(pid)
	if err != nil {
		return false
	}
	return st.State != 'Z' && st.State != 'X' && st.StartTicks == startTicks
}

// ProcessStartTicks returns the start time of pid in clock ticks after boot.
func ProcessStartTicks(pid int) (uint64, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return 0, err
	}
	return st.StartTicks, nil
}
