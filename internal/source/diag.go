// Package source reads the YAML files users write (definitions and transition tables) with the
// line:col of every node, within limits that keep hostile input an error, and reports problems about
// them as compilers do: "path:line:col: error: message".
package source

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// Severity of a diagnostic.
type Severity string

// Severities.
const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
)

// Diagnostic is one problem found in a file. Line is 0 when the problem has no position within the
// file (the file cannot be read, a folder holds no definition); Col is 0 when only the line is known
// (YAML syntax errors).
type Diagnostic struct {
	File     string   `json:"file" validate:"required"`
	Line     int      `json:"line" validate:"required"`
	Col      int      `json:"column" validate:"required"`
	Severity Severity `json:"severity" validate:"required"`
	Message  string   `json:"message" validate:"required"`
	// Kind names what validation proved, for the findings of guard analysis (unsatisfiable, shadowed,
	// not_exhaustive): tools match on it rather than on the message.
	Kind string `json:"kind,omitempty" enums:"unsatisfiable,shadowed,not_exhaustive"`
}

// String formats d as compilers do: "path:line:col: error: message".
func (d Diagnostic) String() string {
	if d.Line == 0 {
		return fmt.Sprintf("%s: %s: %s", d.File, d.Severity, d.Message)
	}
	if d.Col == 0 {
		return fmt.Sprintf("%s:%d: %s: %s", d.File, d.Line, d.Severity, d.Message)
	}
	return fmt.Sprintf("%s:%d:%d: %s: %s", d.File, d.Line, d.Col, d.Severity, d.Message)
}

// Diagnostics is every problem found, errors and warnings.
type Diagnostics []Diagnostic

// Errors counts the errors.
func (ds Diagnostics) Errors() int { return ds.count(SevError) }

// Warnings counts the warnings.
func (ds Diagnostics) Warnings() int { return ds.count(SevWarning) }

func (ds Diagnostics) count(s Severity) int {
	n := 0
	for _, d := range ds {
		if d.Severity == s {
			n++
		}
	}
	return n
}

// Sort orders diagnostics by file and position, keeping the order of those at one place.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// WriteText writes one line per diagnostic.
func (ds Diagnostics) WriteText(w io.Writer) error {
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, d.String()); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the diagnostics as a JSON array (never null).
func (ds Diagnostics) WriteJSON(w io.Writer) error {
	if ds == nil {
		ds = Diagnostics{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(ds)
}

// Pos is a position in a file: line and column from 1.
type Pos struct {
	Line, Col int
}

// Reporter collects the diagnostics of one file.
type Reporter struct {
	File  string
	Diags Diagnostics
}

// Errorf reports an error at p.
func (r *Reporter) Errorf(p Pos, format string, args ...any) {
	r.Diags = append(r.Diags, Diagnostic{File: r.File, Line: p.Line, Col: p.Col, Severity: SevError, Message: fmt.Sprintf(format, args...)})
}

// Finding reports what guard analysis proved at p, as an error or a warning with its kind.
func (r *Reporter) Finding(p Pos, sev Severity, kind, format string, args ...any) {
	r.Diags = append(r.Diags, Diagnostic{File: r.File, Line: p.Line, Col: p.Col, Severity: sev, Kind: kind, Message: fmt.Sprintf(format, args...)})
}

// Warnf reports a warning at p.
func (r *Reporter) Warnf(p Pos, format string, args ...any) {
	r.Diags = append(r.Diags, Diagnostic{File: r.File, Line: p.Line, Col: p.Col, Severity: SevWarning, Message: fmt.Sprintf(format, args...)})
}
