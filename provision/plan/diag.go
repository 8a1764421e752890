package plan

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Severity says whether a diagnostic makes a plan unusable.
type Severity int

// Severities, most severe last.
const (
	Warning Severity = iota
	Error
)

// String returns "warning" or "error".
func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// MarshalJSON writes the severity as its name.
func (s Severity) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// Diagnostic is one problem found in a plan, with where it is and how to fix it.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Col      int      `json:"col"`
	// Path is the field path in the plan, e.g. "nodes[3].bmc.address".
	Path string `json:"path"`
	// Msg says what is wrong.
	Msg string `json:"message"`
	// Hint says how to fix it; may be empty.
	Hint string `json:"hint,omitempty"`
	// Rule is a stable short identifier of the check, e.g. "mac-unique".
	Rule string `json:"rule"`
}

// String formats the diagnostic as "file:line:col: severity: path: message (fix: hint)".
func (d Diagnostic) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d:%d: %s: ", d.File, d.Line, d.Col, d.Severity)
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	if d.Hint != "" {
		b.WriteString("\n    fix: ")
		b.WriteString(d.Hint)
	}
	return b.String()
}

// Diagnostics is every problem found in a plan, in file order.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Count returns the number of errors and warnings.
func (ds Diagnostics) Count() (errs, warns int) {
	for _, d := range ds {
		if d.Severity == Error {
			errs++
		} else {
			warns++
		}
	}
	return errs, warns
}

// Err returns nil when there is no error, otherwise an error listing every
// error diagnostic (warnings are not included).
func (ds Diagnostics) Err() error {
	var errs []error
	for _, d := range ds {
		if d.Severity == Error {
			errs = append(errs, errors.New(d.String()))
		}
	}
	return errors.Join(errs...)
}

// WriteText writes one diagnostic per entry and a closing count line.
func (ds Diagnostics) WriteText(w io.Writer) error {
	for _, d := range ds {
		if _, err := fmt.Fprintln(w, d.String()); err != nil {
			return err
		}
	}
	e, wn := ds.Count()
	_, err := fmt.Fprintf(w, "%d error(s), %d warning(s)\n", e, wn)
	return err
}

// sortByPosition orders diagnostics by file position, errors before warnings
// at the same position, keeping insertion order otherwise.
func (ds Diagnostics) sortByPosition() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Col != b.Col {
			return a.Col < b.Col
		}
		return a.Severity > b.Severity
	})
}

// reporter collects diagnostics by field path and resolves positions at the end.
type reporter struct {
	file string
	pos  positions
	ds   Diagnostics
	seen map[string]bool
	// typeErr holds paths whose value could not be decoded; later checks on
	// them (or inside them) would only repeat the problem, so they are dropped.
	typeErr map[string]bool
}

func (r *reporter) add(sev Severity, rule, path, hint, format string, args ...any) {
	if r.typeErr == nil {
		r.typeErr = map[string]bool{}
	}
	if strings.HasPrefix(rule, "yaml-") {
		r.typeErr[path] = true
	} else {
		for q := path; q != ""; q = parentPath(q) {
			if r.typeErr[q] {
				return
			}
		}
	}
	d := Diagnostic{Severity: sev, File: r.file, Path: path, Msg: fmt.Sprintf(format, args...), Hint: hint, Rule: rule}
	d.Line, d.Col = r.pos.find(path)
	key := d.String()
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	if r.seen[key] {
		return
	}
	r.seen[key] = true
	r.ds = append(r.ds, d)
}

func (r *reporter) errorf(rule, path, hint, format string, args ...any) {
	r.add(Error, rule, path, hint, format, args...)
}

func (r *reporter) warnf(rule, path, hint, format string, args ...any) {
	r.add(Warning, rule, path, hint, format, args...)
}

// positions maps a field path to the line and column of its value (or of its
// key, for keyed entries).
type positions map[string][2]int

// find returns the position of path or of its nearest recorded ancestor.
func (p positions) find(path string) (line, col int) {
	for q := path; ; {
		if lc, ok := p[q]; ok {
			return lc[0], lc[1]
		}
		next := parentPath(q)
		if next == q {
			return 1, 1
		}
		q = next
	}
}

// parentPath strips the last ".field" or "[index]" element of a path.
func parentPath(p string) string {
	if p == "" {
		return ""
	}
	if strings.HasSuffix(p, "]") {
		if i := strings.LastIndex(p, "["); i >= 0 {
			return p[:i]
		}
	}
	if i := strings.LastIndexAny(p, ".]"); i >= 0 {
		if p[i] == ']' {
			return p[:i+1]
		}
		return p[:i]
	}
	return ""
}
