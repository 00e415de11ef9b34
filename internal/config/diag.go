package config

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/hashicorp/hcl/v2"
)

// WriteDiagnostics renders diagnostics for humans: file:line:col, the
// source line with a caret under the problem, what is wrong and how to fix
// it. files maps file names to their parsed content (Workspace.Files); a
// diagnostic whose file is missing there is read from disk.
func WriteDiagnostics(w io.Writer, files map[string]*hcl.File, diags hcl.Diagnostics, color bool) error {
	bw := bufio.NewWriter(w)
	red, bold, reset := "", "", ""
	if color {
		red, bold, reset = "\x1b[31m", "\x1b[1m", "\x1b[0m"
	}
	for i, d := range diags {
		if i > 0 {
			bw.WriteString("\n")
		}
		sev := "error"
		if d.Severity == hcl.DiagWarning {
			sev = "warning"
		}
		loc := ""
		if d.Subject != nil {
			loc = fmt.Sprintf("%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		fmt.Fprintf(bw, "%s%s%s%s: %s%s\n", bold, loc, red, sev, d.Summary, reset)
		if d.Subject != nil {
			if line, ok := sourceLine(files, d.Subject); ok {
				num := fmt.Sprintf("%d", d.Subject.Start.Line)
				pad := strings.Repeat(" ", len(num))
				fmt.Fprintf(bw, "  %s | %s\n", num, strings.ReplaceAll(line, "\t", " "))
				start := d.Subject.Start.Column - 1
				width := 1
				if d.Subject.End.Line == d.Subject.Start.Line && d.Subject.End.Column > d.Subject.Start.Column {
					width = d.Subject.End.Column - d.Subject.Start.Column
				}
				lineLen := utf8.RuneCountInString(line)
				if start > lineLen {
					start = lineLen
				}
				if start+width > lineLen && lineLen > start {
					width = lineLen - start
				}
				fmt.Fprintf(bw, "  %s | %s%s%s%s\n", pad, strings.Repeat(" ", start), red, strings.Repeat("^", max(width, 1)), reset)
			}
		}
		if d.Detail != "" {
			fmt.Fprintf(bw, "  %s\n", d.Detail)
		}
	}
	return bw.Flush()
}

// sourceLine returns the text of the line a range starts on.
func sourceLine(files map[string]*hcl.File, r *hcl.Range) (string, bool) {
	if r.Start.Line < 1 {
		return "", false
	}
	var src []byte
	if f := files[r.Filename]; f != nil {
		src = f.Bytes
	} else if b, err := os.ReadFile(r.Filename); err == nil {
		src = b
	} else {
		return "", false
	}
	lines := bytes.Split(src, []byte("\n"))
	if r.Start.Line > len(lines) {
		return "", false
	}
	return strings.TrimRight(string(lines[r.Start.Line-1]), "\r"), true
}

// DiagnosticJSON is the machine-readable form of a diagnostic.
type DiagnosticJSON struct {
	Severity string `json:"severity"`
	Summary  string `json:"summary"`
	Detail   string `json:"detail,omitempty"`
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	EndLine  int    `json:"end_line,omitempty"`
	EndCol   int    `json:"end_column,omitempty"`
}

// DiagnosticsJSON converts diagnostics for --output json.
func DiagnosticsJSON(diags hcl.Diagnostics) []DiagnosticJSON {
	out := []DiagnosticJSON{}
	for _, d := range diags {
		j := DiagnosticJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl.DiagWarning {
			j.Severity = "warning"
		}
		if s := d.Subject; s != nil {
			j.File, j.Line, j.Column, j.EndLine, j.EndCol = s.Filename, s.Start.Line, s.Start.Column, s.End.Line, s.End.Column
		}
		out = append(out, j)
	}
	return out
}

var _ json.Marshaler = Duration{}

// DiagnosticsFromJSON turns diagnostics received as JSON (from the server)
// back into diagnostics, to render them as `runway validate` does.
func DiagnosticsFromJSON(in []DiagnosticJSON) hcl.Diagnostics {
	out := make(hcl.Diagnostics, 0, len(in))
	for _, j := range in {
		d := &hcl.Diagnostic{Severity: hcl.DiagError, Summary: j.Summary, Detail: j.Detail}
		if j.Severity == "warning" {
			d.Severity = hcl.DiagWarning
		}
		if j.File != "" {
			d.Subject = &hcl.Range{Filename: j.File,
				Start: hcl.Pos{Line: j.Line, Column: j.Column}, End: hcl.Pos{Line: j.EndLine, Column: j.EndCol}}
		}
		out = append(out, d)
	}
	return out
}

// OnlyErrors returns the errors among diags.
func OnlyErrors(diags hcl.Diagnostics) hcl.Diagnostics {
	var out hcl.Diagnostics
	for _, d := range diags {
		if d.Severity == hcl.DiagError {
			out = append(out, d)
		}
	}
	return out
}
