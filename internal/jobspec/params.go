package jobspec

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// jobDirParam is the built-in parameter: the absolute directory of the spec.
const jobDirParam = "job_dir"

// refError is a malformed ${...} reference; the caller adds file and line.
type refError struct{ msg string }

func (e *refError) Error() string { return e.msg }

// scanRefs walks s, calling lit for literal text (with $$ already turned into
// $) and ref for every ${name}. It stops at the first malformed reference or
// at the first error from ref.
func scanRefs(s string, lit func(string), ref func(name string) error) error {
	for {
		i := strings.IndexByte(s, '$')
		if i < 0 {
			lit(s)
			return nil
		}
		lit(s[:i])
		rest := s[i+1:]
		switch {
		case strings.HasPrefix(rest, "$"):
			lit("$")
			s = rest[1:]
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return &refError{fmt.Sprintf("unterminated parameter reference %q: write ${name}, or $$ for a literal \"$\"", clip(s[i:]))}
			}
			name := rest[1:end]
			if !validParamName(name) {
				return &refError{fmt.Sprintf("%q is not a parameter reference: a name has letters, digits, \"_\" and \"-\" and starts with a letter or \"_\"; write $$ for a literal \"$\"", s[i:i+1+end+1])}
			}
			if err := ref(name); err != nil {
				return err
			}
			s = rest[end+1:]
		default:
			return &refError{fmt.Sprintf("a lone \"$\" in %q: write ${name} to use a parameter, or $$ for a literal \"$\"", clip(s[i:]))}
		}
	}
}

// clip shortens s for an error message.
func clip(s string) string {
	const n = 40
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

func validParamName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		digit := c == '-' || (c >= '0' && c <= '9')
		if !letter && (i == 0 || !digit) {
			return false
		}
	}
	return true
}

// refNames returns the parameter names that s refers to, ignoring
// malformed references (they are reported when s is expanded).
func refNames(s string) []string {
	var names []string
	_ = scanRefs(s, func(string) {}, func(name string) error {
		names = append(names, name)
		return nil
	})
	return names
}

// paramDefault is a value under [params].
type paramDefault struct {
	value string
	line  int
}

// resolver computes parameter values: --param values are taken literally,
// [params] defaults are expanded (they may refer to job_dir and to other
// parameters).
type resolver struct {
	file     string // for messages
	dir      string // job_dir
	cli      map[string]string
	defaults map[string]paramDefault
	values   map[string]string
	visiting map[string]bool
}

// value returns the value of parameter name, referred to on line.
func (r *resolver) value(name string, line int, chain []string) (string, error) {
	if name == jobDirParam {
		return r.dir, nil
	}
	if v, ok := r.cli[name]; ok {
		return v, nil
	}
	if v, ok := r.values[name]; ok {
		return v, nil
	}
	d, ok := r.defaults[name]
	if !ok {
		return "", &Error{File: r.file, Line: line, Msg: fmt.Sprintf(
			"parameter ${%s} is never set: pass --param %s=VALUE or give it a default under [params]", name, name)}
	}
	if r.visiting[name] {
		cycle := slices.Concat(chain[slices.Index(chain, name):], []string{name})
		return "", &Error{File: r.file, Line: d.line, Msg: fmt.Sprintf(
			"parameter ${%s} refers to itself (%s): break the cycle", name, strings.Join(cycle, " -> "))}
	}
	r.visiting[name] = true
	v, err := r.expand(d.value, d.line, append(chain, name))
	delete(r.visiting, name)
	if err != nil {
		return "", err
	}
	r.values[name] = v
	return v, nil
}

// expand replaces the references in s, a string written on line.
func (r *resolver) expand(s string, line int, chain []string) (string, error) {
	var b strings.Builder
	err := scanRefs(s, func(lit string) { b.WriteString(lit) }, func(name string) error {
		v, err := r.value(name, line, chain)
		if err != nil {
			return err
		}
		if !utf8.ValidString(v) {
			return &Error{File: r.file, Line: line, Msg: fmt.Sprintf(
				"the value of parameter ${%s} is not valid UTF-8, which a TOML string cannot hold", name)}
		}
		b.WriteString(v)
		return nil
	})
	var re *refError
	if errors.As(err, &re) {
		return "", &Error{File: r.file, Line: line, Msg: re.msg}
	}
	if err != nil {
		return "", err
	}
	return b.String(), nil
}

// quoteTOML writes s as a TOML basic string that spans exactly newlines
// lines breaks, so that the lines after it keep their numbers: a multi-line
// basic string whose raw line breaks follow a line-ending backslash, which
// TOML trims together with the whitespace after it.
func quoteTOML(s string, newlines int) string {
	var b strings.Builder
	if newlines > 0 {
		b.WriteString(`"""`)
	} else {
		b.WriteByte('"')
	}
	for _, c := range s {
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if c < 0x20 || c == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, c)
			} else {
				b.WriteRune(c)
			}
		}
	}
	if newlines > 0 {
		b.WriteByte('\\')
		b.WriteString(strings.Repeat("\n", newlines))
		b.WriteString(`"""`)
	} else {
		b.WriteByte('"')
	}
	return b.String()
}

// ParseAssignments parses the "name=value" pairs of repeated command-line
// flags (--param, --conf) into a map. The value is everything after the
// first "="; a pair without "=", with an empty name, or whose name repeats
// an earlier pair is an error.
func ParseAssignments(kvs []string) (map[string]string, error) {
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("%q has no \"=\": write name=value", kv)
		}
		k = strings.TrimSpace(k)
		if k == "" {
			return nil, fmt.Errorf("%q has no name before \"=\": write name=value", kv)
		}
		if old, dup := m[k]; dup {
			return nil, fmt.Errorf("%q is given twice (%s=%s and %s): give it once", k, k, old, kv)
		}
		m[k] = v
	}
	return m, nil
}
