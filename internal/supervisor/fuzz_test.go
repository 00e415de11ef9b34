package supervisor

import (
	"os"
	"path/filepath"
	"testing"
)

func FuzzParseLogLine(f *testing.F) {
	f.Add("2026-11-25T13:02:02.123456789Z stdout hello world")
	f.Add("2026-11-25T13:02:02Z stderr ")
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, s string) {
		l, ok := parseLine(s)
		if !ok {
			return
		}
		again, ok := parseLine(string(formatLine(l.Time, l.Stream, l.Text)[:len(formatLine(l.Time, l.Stream, l.Text))-1]))
		if !ok || !again.Time.Equal(l.Time) || again.Stream != l.Stream || again.Text != l.Text {
			t.Fatalf("round trip of %q: %+v != %+v", s, again, l)
		}
	})
}

func FuzzLoadState(f *testing.F) {
	f.Add([]byte(`{"format":"runway-agent-state/1","agent_id":"ab","groups":[{"spec":{"name":"g"},"state":"active","created_at":"2026-01-01T00:00:00Z","limits":"","next_index":1,"instances":[{"id":"aa","index":0,"port":20000,"pid":5,"start_ticks":7,"restarts":0}]}]}`))
	f.Add([]byte(`{"format":"runway-agent-state/1"`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(t.TempDir(), StateFileName)
		os.WriteFile(path, b, 0o600)
		st, err := loadState(path)
		if err != nil {
			if _, ok := err.(*StateError); !ok {
				t.Fatalf("error %T: want *StateError", err)
			}
			return
		}
		for _, g := range st.Groups {
			for _, in := range g.Instances {
				if in.Port <= 0 || in.Port > 65535 || in.ID == "" || in.PID < 0 {
					t.Fatalf("invalid instance accepted: %+v", in)
				}
			}
		}
	})
}
