package procfs

import (
	"os"
	"testing"
)

// TestProcessAlive: this process is alive at its own start time, not at
// another one (a recycled pid), and a pid of 0 is never alive.
func TestProcessAlive(t *testing.T) {
	start, err := ProcessStartTicks(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !ProcessAlive(os.Getpid(), start) {
		t.Error("this process at its start time: not alive")
	}
	if ProcessAlive(os.Getpid(), start+1) {
		t.Error("this process at another start time: alive, want a recycled pid refused")
	}
	if ProcessAlive(0, 0) {
		t.Error("pid 0: alive")
	}
}

// TestParseStat: the command name may hold spaces and parentheses.
func TestParseStat(t *testing.T) {
	st, err := ParseStat([]byte("5304 (a (b) c) R 5300 5301 4460 0 -1 4194304 102 0 0 0 7 3 0 0 20 0 1 0 19273 3133440 409 18446744073709551615"))
	if err != nil {
		t.Fatal(err)
	}
	if st.State != 'R' || st.PPID != 5300 || st.PGID != 5301 || st.Session != 4460 || st.UTime != 7 || st.STime != 3 || st.StartTicks != 19273 || st.RSSPages != 409 {
		t.Errorf("parsed %+v", st)
	}
	if _, err := ParseStat([]byte("1 (a) S 0")); err == nil {
		t.Error("a short stat parsed")
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte("5304 (cat) R 5300 5300 4460 0 -1 4194304 102 0 0 0 0 0 0 0 20 0 1 0 19273 3133440 409 18446744073709551615"))
	f.Add([]byte("1 (a) b) S 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseStat(b)
	})
}
