package jobspec

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/pelletier/go-toml/v2/unstable"
)

// tomlError turns an error of go-toml into an *Error with a position.
func (p *parser) tomlError(err error) *Error {
	var missing *toml.StrictMissingError
	if errors.As(err, &missing) && len(missing.Errors) > 0 {
		first := missing.Errors[0]
		for _, e := range missing.Errors[1:] {
			if l, _ := e.Position(); l < lineOf(&first) {
				first = e
			}
		}
		return p.unknownKey(&first)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		key := de.Key()
		if path, ok := p.valuePath(line, col); ok {
			key = path // go-toml leaves out the table of an inline table
		}
		name := tableName(key)
		switch {
		case strings.HasPrefix(msg, "cannot decode TOML "):
			return p.errorf(line, "%s", typeMismatch(key, msg))
		case strings.HasPrefix(msg, "cannot store an array table") && name != "":
			return p.errorf(line, "%s must be a table, like [%s], not an array of tables", name, name)
		}
		return &Error{File: p.file, Line: line, Col: col, Msg: msg}
	}
	var pe *unstable.ParserError
	if errors.As(err, &pe) {
		return p.errorf(0, "%s", pe.Message)
	}
	return p.errorf(0, "%s", strings.TrimPrefix(err.Error(), "toml: "))
}

// valuePath returns the path of the value that starts at line:col, if the
// document has been indexed.
func (p *parser) valuePath(line, col int) ([]string, bool) {
	if p.idx == nil {
		return nil, false
	}
	path, ok := p.idx.values[pos{line, col}]
	return path, ok
}

func lineOf(e *toml.DecodeError) int {
	l, _ := e.Position()
	return l
}

// typeMismatch rewords go-toml's "cannot decode TOML integer into struct
// field ... of type ...". Leaves are decoded into `any`, so only tables and
// arrays of tables can mismatch.
func typeMismatch(key []string, msg string) string {
	found, _, _ := strings.Cut(strings.TrimPrefix(msg, "cannot decode TOML "), " ")
	name := tableName(key)
	if len(key) == 2 && key[0] == "steps" {
		if n, err := strconv.Atoi(key[1]); err == nil {
			return fmt.Sprintf("step %d must be a table with one operator, like { map = \"module.function\" }, not %s", n+1, article(found))
		}
	}
	if len(key) == 1 && key[0] == "steps" {
		return fmt.Sprintf("steps must be an array of tables, like [[steps]] or steps = [{ map = \"module.function\" }], not %s or an array of them", article(found))
	}
	if name == "" {
		return fmt.Sprintf("expected a table, found %s", article(found))
	}
	return fmt.Sprintf("%s must be a table, like [%s], not %s", name, name, article(found))
}

// unknownKey explains a key that the strict decoder found no place for,
// suggesting the closest known key of the same table.
func (p *parser) unknownKey(e *toml.DecodeError) *Error {
	line, col := e.Position()
	var place keyPlace
	ok := false
	if p.idx != nil {
		place, ok = p.idx.keys[pos{line, col}]
	}
	if !ok {
		place = keyPlace{parts: e.Key()}
	}
	full := append(append([]string(nil), place.prefix...), place.parts...)
	name := strings.Join(place.parts, ".")
	candidates := knownKeys(place.prefix, len(place.parts), full)
	if place.header {
		hint := ""
		if s := suggest(name, candidates); s != "" {
			hint = fmt.Sprintf("; did you mean [%s]?", s)
		}
		return p.errorf(line, "unknown table [%s]%s", name, hint)
	}
	where := ""
	if len(place.prefix) > 0 {
		where = " in [" + tableName(place.prefix) + "]"
	}
	return p.errorf(line, "unknown key %q%s%s", name, where, didYouMean(name, candidates))
}

// tableName renders a table's path as written in a header.
func tableName(path []string) string {
	parts := make([]string, len(path))
	for i, part := range path {
		parts[i] = quoteKey(part)
	}
	return strings.Join(parts, ".")
}

// quoteKey quotes a key part unless it is a bare TOML key.
func quoteKey(k string) string {
	if k == "" || strings.TrimFunc(k, isBareKeyRune) != "" {
		return quoteTOML(k, 0)
	}
	return k
}

func isBareKeyRune(c rune) bool {
	return c == '_' || c == '-' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

// schema lists every key path a spec may contain; "*" matches any key.
func schema() [][]string {
	s := [][]string{
		{"name"}, {"params"}, {"params", "*"},
		{"modules"}, {"modules", "*"}, {"modules", "*", "go"}, {"modules", "*", "path"}, {"modules", "*", "dir"},
		{"source"}, {"source", "text"},
		{"steps"},
		{"sink"}, {"sink", "text"},
		{"conf"},
	}
	groups := map[string]bool{}
	for _, k := range ConfKeys() {
		parts := strings.Split(k, ".")
		if len(parts) > 1 && !groups[parts[0]] {
			groups[parts[0]] = true
			s = append(s, []string{"conf", parts[0]})
		}
		s = append(s, append([]string{"conf"}, parts...))
	}
	return s
}

// knownKeys returns the dotted keys of n parts that the table at prefix may
// contain; full is the path of the unknown key, whose parts fill wildcards.
func knownKeys(prefix []string, n int, full []string) []string {
	var out []string
	for _, path := range schema() {
		if len(path) != len(prefix)+n || !matches(path[:len(prefix)], prefix) {
			continue
		}
		rel := append([]string(nil), path[len(prefix):]...)
		for i, part := range rel {
			if part == "*" {
				rel[i] = full[len(prefix)+i]
			}
		}
		out = append(out, strings.Join(rel, "."))
	}
	return out
}

func matches(pattern, path []string) bool {
	for i := range pattern {
		if pattern[i] != "*" && pattern[i] != path[i] {
			return false
		}
	}
	return true
}
