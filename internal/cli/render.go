package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/runwayhq/runway/internal/config"
)

// groupDigits formats 18342 as "18,342".
func groupDigits(n int64) string {
	s := fmt.Sprintf("%d", n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// render prints what a command built: v itself with --output json, else
// table(w, v) for people. Commands fetch and compute; the table layouts live
// in render_*.go, so both outputs show the same data and a layout can change
// without touching a command.
func render[T any](g *Globals, v T, table func(io.Writer, T) error) error {
	if g.JSON() {
		return writeJSON(g, v)
	}
	return table(g.Stdout, v)
}

// writeJSON prints v as indented JSON, the --output json of every command.
func writeJSON(g *Globals, v any) error {
	enc := json.NewEncoder(g.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// flatTable prints a value as sorted "path = value" lines, easy to read and
// grep (runway config show).
func flatTable(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	for _, l := range config.Flatten(b) {
		fmt.Fprintln(w, l)
	}
	return nil
}

func fmtTime(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04")
}

// thousands formats n with comma separators: 65534 -> "65,534".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1fGiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0fKiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%dB", n)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
