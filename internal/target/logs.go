package target

import (
	"context"
	"time"
)

// LogLine is one line an instance wrote.
type LogLine struct {
	Time     time.Time
	Instance string
	Stream   string // "stdout" or "stderr"
	Text     string
}

// LogQuery selects the lines of a group (all its instances when Instance is
// ""), the last Tail of them when Tail > 0 (of each instance when
// following), none older than Since when it is set, and only those whose
// instance id or text contains Filter when it is set.
type LogQuery struct {
	Group    string
	Instance string
	Tail     int
	Since    time.Time
	Filter   string
	// Follow keeps emitting new lines until ctx ends: of the instances the
	// group has when the call starts and of those it gains while followed
	// (a rolling deploy grows a group; their lines are emitted from their
	// first). Following a deleted group ends after its last line.
	Follow bool
}

// CrashReport says why a group's instances crash: one crashed instance, how
// it ended, and the last lines of its output.
type CrashReport struct {
	Instance string
	Exit     string   // "exit status 1", "unhealthy: ..."
	Lines    []string // the last lines of its log, oldest first
}

// Logs read what instances wrote, also after their group was deleted (a
// target keeps the logs of recently deleted groups).
type Logs interface {
	// Logs emits the lines q selects, oldest first (per instance when
	// following); following ends without an error when ctx ends.
	Logs(ctx context.Context, ref ServiceRef, q LogQuery, emit func(LogLine) error) error
	// CrashReport names the instance of group that crashed most often, how
	// it last ended and its last lines; zero when none crashed. The engine
	// quotes it in the error of a release whose new group exceeds its crash
	// budget, so the line that says why is where the user looks first.
	CrashReport(ctx context.Context, ref ServiceRef, group string) (CrashReport, error)
}
