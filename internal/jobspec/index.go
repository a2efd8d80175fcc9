package jobspec

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// docIndex records where things are written in a TOML document, so that
// errors found after decoding can name a line. Paths are key paths; the
// elements of arrays and arrays of tables are numbered from "0".
type docIndex struct {
	newlines []int            // offsets of every '\n'
	lines    map[string]int   // pathKey(path) -> line of its first appearance
	keys     map[pos]keyPlace // start of a key (or table header) -> how it was written
	values   map[pos][]string // start of a value -> its path
	strs     []strLit         // every string value, in document order
	arrays   map[string]int   // pathKey(array table) -> number of [[headers]] seen so far
}

type pos struct{ line, col int }

// keyPlace is a key as written: the table it was written in (prefix) and
// its own, possibly dotted, parts. A table header has no prefix.
type keyPlace struct {
	prefix, parts []string
	header        bool
}

// strLit is a string value in the document.
type strLit struct {
	path       []string
	start, end int // byte range of the literal, quotes included
	line       int
	value      string
}

func pathKey(path []string) string { return strings.Join(path, "\x00") }

// indexDocument walks a document that is known to parse.
func indexDocument(data []byte) (*docIndex, error) {
	idx := &docIndex{
		lines:  map[string]int{},
		keys:   map[pos]keyPlace{},
		values: map[pos][]string{},
		arrays: map[string]int{},
	}
	for i, b := range data {
		if b == '\n' {
			idx.newlines = append(idx.newlines, i)
		}
	}
	var p unstable.Parser
	p.Reset(data)
	var table []string
	for p.NextExpression() {
		expr := p.Expression()
		switch expr.Kind {
		case unstable.Table, unstable.ArrayTable:
			parts, start := keyParts(expr)
			idx.keys[idx.pos(start)] = keyPlace{parts: parts, header: true}
			table = idx.resolveArrays(parts)
			if expr.Kind == unstable.ArrayTable {
				k := pathKey(table)
				n := idx.arrays[k]
				idx.arrays[k] = n + 1
				idx.record(table, start)
				table = append(table, strconv.Itoa(n))
			}
			idx.record(table, start)
		case unstable.KeyValue:
			idx.keyValue(table, expr)
		}
	}
	if err := p.Error(); err != nil {
		return nil, err
	}
	sort.SliceStable(idx.strs, func(i, j int) bool { return idx.strs[i].start < idx.strs[j].start })
	return idx, nil
}

// resolveArrays inserts the current element number after every prefix of a
// table header that names an array of tables, as TOML does.
func (idx *docIndex) resolveArrays(parts []string) []string {
	var out []string
	for i, part := range parts {
		out = append(out, part)
		if i == len(parts)-1 {
			break
		}
		if n := idx.arrays[pathKey(out)]; n > 0 {
			out = append(out, strconv.Itoa(n-1))
		}
	}
	return out
}

func keyParts(n *unstable.Node) (parts []string, start int) {
	it := n.Key()
	first := true
	for it.Next() {
		k := it.Node()
		if first {
			start, first = int(k.Raw.Offset), false
		}
		parts = append(parts, string(k.Data))
	}
	return parts, start
}

func (idx *docIndex) keyValue(table []string, kv *unstable.Node) {
	parts, start := keyParts(kv)
	idx.keys[idx.pos(start)] = keyPlace{prefix: table, parts: parts}
	path := append(append([]string(nil), table...), parts...)
	for i := len(table) + 1; i <= len(path); i++ {
		idx.record(path[:i], start)
	}
	idx.value(path, kv.Value(), start)
}

func (idx *docIndex) value(path []string, v *unstable.Node, keyStart int) {
	start := keyStart
	if v.Raw.Length > 0 {
		start = int(v.Raw.Offset)
		idx.values[idx.pos(start)] = path
	}
	switch v.Kind {
	case unstable.String:
		idx.strs = append(idx.strs, strLit{
			path:  path,
			start: int(v.Raw.Offset),
			end:   int(v.Raw.Offset + v.Raw.Length),
			line:  idx.pos(start).line,
			value: string(v.Data),
		})
	case unstable.Array:
		i := 0
		it := v.Children()
		for it.Next() {
			el := it.Node()
			if el.Kind == unstable.Comment {
				continue
			}
			elPath := append(append([]string(nil), path...), strconv.Itoa(i))
			elStart := start
			if el.Raw.Length > 0 {
				elStart = int(el.Raw.Offset)
			}
			idx.record(elPath, elStart)
			idx.value(elPath, el, elStart)
			i++
		}
	case unstable.InlineTable:
		it := v.Children()
		for it.Next() {
			if kv := it.Node(); kv.Kind == unstable.KeyValue {
				idx.keyValue(path, kv)
			}
		}
	}
}

// record notes the line of a path's first appearance.
func (idx *docIndex) record(path []string, offset int) {
	k := pathKey(path)
	if _, ok := idx.lines[k]; !ok {
		idx.lines[k] = idx.pos(offset).line
	}
}

// line returns the line where path first appears, or 0.
func (idx *docIndex) line(path ...string) int {
	return idx.lines[pathKey(path)]
}

// pos converts a byte offset into a 1-based line and byte column, like
// go-toml's DecodeError.Position.
func (idx *docIndex) pos(offset int) pos {
	n := sort.SearchInts(idx.newlines, offset) // newlines before offset
	lineStart := 0
	if n > 0 {
		lineStart = idx.newlines[n-1] + 1
	}
	return pos{line: n + 1, col: offset - lineStart + 1}
}
