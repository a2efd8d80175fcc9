package jobspec

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
)

// name returns the job's name: name = "..." or the file's base name
// without its extension.
func (p *parser) name(v any, abs string) (string, error) {
	line := p.idx.line("name")
	if v == nil {
		base := filepath.Base(abs)
		name := strings.TrimSuffix(base, filepath.Ext(base))
		if name == "" {
			name = base
		}
		return name, nil
	}
	s, ok := v.(string)
	if !ok {
		return "", p.errorf(line, "name must be a string, not %s", tomlKind(v))
	}
	if strings.TrimSpace(s) == "" {
		return "", p.errorf(line, "name is empty: give the job a name, or remove the key to use the file's name")
	}
	return s, nil
}

// modules checks [modules.NAME] tables and makes their paths absolute,
// relative to the spec's directory.
func (p *parser) modules(docs map[string]moduleDoc) ([]Module, error) {
	mods := make([]Module, 0, len(docs))
	for _, name := range sortedKeys(docs) {
		d := docs[name]
		line := p.idx.line("modules", name)
		key := "modules." + quoteKey(name)
		switch {
		case name == "":
			return nil, p.errorf(line, "a module name cannot be empty")
		case strings.Contains(name, "."):
			return nil, p.errorf(line, "module name %q cannot contain \".\": steps refer to functions as module.function", name)
		}
		goDir, err := p.modulePath(key, "go", d.Go, name)
		if err != nil {
			return nil, err
		}
		path, err := p.modulePath(key, "path", d.Path, name)
		if err != nil {
			return nil, err
		}
		dir, err := p.modulePath(key, "dir", d.Dir, name)
		if err != nil {
			return nil, err
		}
		var given []string
		for _, f := range []struct{ name, value string }{{"go", goDir}, {"path", path}, {"dir", dir}} {
			if f.value != "" {
				given = append(given, f.name)
			}
		}
		switch len(given) {
		case 0:
			return nil, p.errorf(line, "%s has none of go, path and dir: give go = \"<Go package directory>\", path = \"<file>.wasm\" or dir = \"<guest directory>\"", key)
		case 1:
		default:
			return nil, p.errorf(line, "%s has %s: give exactly one of go, path and dir", key, strings.Join(given, " and "))
		}
		// Point later errors about the module's file at the line that
		// names it.
		if l := p.idx.line("modules", name, given[0]); l > 0 {
			line = l
		}
		mods = append(mods, Module{Name: name, Path: path, GoDir: goDir, Dir: dir, Line: line})
	}
	return mods, nil
}

// modulePath checks a module's go or path value and resolves it against
// the spec's directory; it returns "" when the key is absent.
func (p *parser) modulePath(key, field string, v any, name string) (string, error) {
	if v == nil {
		return "", nil
	}
	line := p.idx.line("modules", name, field)
	s, ok := v.(string)
	if !ok {
		return "", p.errorf(line, "%s.%s must be a string, not %s", key, field, tomlKind(v))
	}
	if s == "" {
		return "", p.errorf(line, "%s.%s is empty: give a path relative to %s's directory", key, field, p.file)
	}
	if !filepath.IsAbs(s) {
		s = filepath.Join(p.dir, s)
	}
	return filepath.Clean(s), nil
}

// source checks [source]; relative globs resolve against the current
// working directory.
func (p *parser) source(d *sourceDoc) (Source, error) {
	if d == nil {
		return Source{}, p.errorf(0, "missing [source]: add a [source] table with text = \"<glob>\" (or an array of globs)")
	}
	if d.Dataset != nil {
		line := p.idx.line("source", "dataset")
		if d.Generate != nil || d.Text != nil || d.Records != nil || d.CSV != nil || d.JSON != nil || d.Header != nil || d.RecordSize != nil || d.KeySize != nil {
			return Source{}, p.errorf(line, "a source with dataset = \"NAME\" reads that dataset and nothing else: remove its other keys")
		}
		name, ok := d.Dataset.(string)
		if !ok || name == "" {
			return Source{}, p.errorf(line, "source.dataset names a [datasets.NAME] table, like dataset = \"links\", not %v", d.Dataset)
		}
		return Source{Kind: "dataset", Dataset: name, Line: line}, nil
	}
	if d.Inline != nil {
		line := p.idx.line("source", "inline")
		if d.Generate != nil || d.Text != nil || d.Records != nil || d.CSV != nil || d.JSON != nil || d.Header != nil || d.RecordSize != nil || d.KeySize != nil {
			return Source{}, p.errorf(line, "[source] has inline values and other input: a source reads one kind of input")
		}
		arr, ok := d.Inline.([]any)
		if !ok {
			return Source{}, p.errorf(line, "source.inline must be an array of strings, the records' values, not %s", tomlKind(d.Inline))
		}
		src := Source{Kind: "inline", Inline: make([]string, len(arr)), Line: line}
		for i, v := range arr {
			if src.Inline[i], ok = v.(string); !ok {
				return Source{}, p.errorf(line, "source.inline[%d] must be a string, not %s", i, tomlKind(v))
			}
		}
		if d.Parts != nil {
			n, ok := d.Parts.(int64)
			if !ok || n < 1 || n > 100000 {
				return Source{}, p.errorf(p.idx.line("source", "parts"), "source.parts must be a number of splits, 1 to 100000, not %v", d.Parts)
			}
			src.Parts = int(n)
		}
		return src, nil
	}
	if d.Parts != nil {
		return Source{}, p.errorf(p.idx.line("source", "parts"), "source.parts goes with inline = [...]; files are split by conf source.split_size")
	}
	if d.Generate != nil {
		line := p.idx.line("source", "generate")
		if d.Text != nil || d.Records != nil {
			return Source{}, p.errorf(line, "[source] has generate and files: a job reads one kind of input")
		}
		n, ok := d.Generate.(int64)
		if str, isStr := d.Generate.(string); isStr {
			// A string lets a parameter set it: generate = "${throws}".
			v, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
			n, ok = v, err == nil
		}
		if !ok || n < 0 || n > 1<<50 {
			return Source{}, p.errorf(line, "source.generate must be a number of records, 0 to 2^50, not %v", d.Generate)
		}
		return Source{Kind: "generate", Count: n, Line: line}, nil
	}
	kind, field, v := "text", "text", d.Text
	inputs := 0
	for _, x := range []any{d.Text, d.Records, d.CSV, d.JSON} {
		if x != nil {
			inputs++
		}
	}
	switch {
	case inputs > 1:
		return Source{}, p.errorf(p.idx.line("source"), "[source] has more than one of text, csv, json and records: a job's source reads one kind of input")
	case d.Header != nil && d.CSV == nil:
		return Source{}, p.errorf(p.idx.line("source", "header"), "header goes with csv = \"<glob>\"")
	case d.CSV != nil:
		kind, field, v = "csv", "csv", d.CSV
	case d.JSON != nil:
		kind, field, v = "json", "json", d.JSON
	case d.Records != nil:
		kind, field, v = "records", "records", d.Records
	case d.RecordSize != nil || d.KeySize != nil:
		return Source{}, p.errorf(p.idx.line("source"), "record_size and key_size go with records = \"<glob>\" (fixed-length binary records), not text")
	}
	line := p.idx.line("source", field)
	var globs []string
	switch v := v.(type) {
	case nil:
		return Source{}, p.errorf(p.idx.line("source"), "[source] has no input: add text = \"<glob>\" (or an array of globs)")
	case string:
		globs = []string{v}
	case []any:
		if len(v) == 0 {
			return Source{}, p.errorf(line, "source.%s is an empty array: give at least one glob", field)
		}
		for i, el := range v {
			s, ok := el.(string)
			if !ok {
				return Source{}, p.errorf(p.idx.line("source", field, strconv.Itoa(i)),
					"source.%s[%d] must be a string, not %s", field, i, tomlKind(el))
			}
			globs = append(globs, s)
		}
	default:
		return Source{}, p.errorf(line, "source.%s must be a glob or an array of globs, not %s", field, tomlKind(v))
	}
	src := Source{Kind: kind, Line: line}
	if kind == "csv" {
		src.Header = true
		if d.Header != nil {
			h, ok := d.Header.(bool)
			if !ok {
				return Source{}, p.errorf(p.idx.line("source", "header"), "source.header must be true or false, not %v", d.Header)
			}
			src.Header = h
		}
	}
	if kind == "records" {
		size, ok := d.RecordSize.(int64)
		if !ok || size < 1 || size > 1<<20 {
			return Source{}, p.errorf(p.idx.line("source", "record_size"), "source.record_size must be the length of a record in bytes, 1 to 1048576 (like 100), not %v", d.RecordSize)
		}
		key, ok := d.KeySize.(int64)
		if d.KeySize == nil {
			key, ok = 0, true
		}
		if !ok || key < 0 || key > size {
			return Source{}, p.errorf(p.idx.line("source", "key_size"), "source.key_size must be 0 to record_size (%d) bytes, not %v", size, d.KeySize)
		}
		src.RecordSize, src.KeySize = int(size), int(key)
	}
	for i, g := range globs {
		if g == "" {
			return Source{}, p.errorf(line, "source.%s has an empty glob: give a pattern like \"data/*.txt\"", field)
		}
		if _, err := filepath.Match(g, ""); err != nil {
			return Source{}, p.errorf(line, "source.%s: %q is not a valid glob (%v): escape a literal *, ?, [ or \\ with \\", field, g, err)
		}
		if storage.IsLocation(g) {
			// A volume's files (vol:path, s3://…): the grid resolves it
			// against the tenant's volumes.
			continue
		}
		abs, err := filepath.Abs(g)
		if err != nil {
			return Source{}, p.errorf(line, "source.%s: cannot make %q absolute: %v", field, g, err)
		}
		globs[i] = abs
	}
	src.Globs = globs
	return src, nil
}

// steps checks the chain of operators.
func (p *parser) steps(docs []map[string]any, mods []Module) ([]Step, error) {
	names := make([]string, len(mods))
	for i, m := range mods {
		names[i] = m.Name
	}
	steps := make([]Step, 0, len(docs))
	for i, d := range docs {
		n := strconv.Itoa(i)
		line := p.idx.line("steps", n)
		if len(d) != 1 {
			keys := sortedKeys(d)
			if len(keys) == 0 {
				return nil, p.errorf(line, "step %d has no operator: give it one of %s, like flat_map = \"module.function\"",
					i+1, strings.Join(ops(), ", "))
			}
			return nil, p.errorf(line, "step %d has %d keys (%s): a step has exactly one, its operator; give each operator its own step",
				i+1, len(keys), strings.Join(keys, ", "))
		}
		for op, v := range d {
			if l := p.idx.line("steps", n, op); l > 0 {
				line = l
			}
			st, err := p.step(op, v, line, names)
			if err != nil {
				return nil, err
			}
			steps = append(steps, st)
		}
	}
	return steps, nil
}

func (p *parser) step(op string, v any, line int, modules []string) (Step, error) {
	if !isOp(op) {
		hint := ""
		if s := suggest(op, ops()); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		return Step{}, p.errorf(line, "unknown operator %q; operators are %s%s", op, strings.Join(ops(), ", "), hint)
	}
	if planner.Op(op) == planner.OpSample {
		return p.sampleStep(v, line)
	}
	if builtin(planner.Op(op)) {
		return p.builtinStep(planner.Op(op), v, line)
	}
	if planner.Op(op) == planner.OpAggregateByKey {
		t, ok := v.(map[string]any)
		if !ok || len(t) != 2 || t["create"] == nil || t["merge"] == nil {
			return Step{}, p.errorf(line, "aggregate_by_key takes { create = \"module.function\", merge = \"module.function\" }: a map function that makes a value an accumulator and a reduce function that merges two, not %v", v)
		}
		create, err := p.step(string(planner.OpMap), t["create"], line, modules)
		if err != nil {
			return Step{}, err
		}
		merge, err := p.step(string(planner.OpReduceByKey), t["merge"], line, modules)
		if err != nil {
			return Step{}, err
		}
		return Step{Op: planner.OpAggregateByKey, Module: create.Module, Function: create.Function, MergeModule: merge.Module, MergeFunction: merge.Function, Line: line}, nil
	}
	if readsSide(planner.Op(op)) {
		name, ok := v.(string)
		if !ok || name == "" {
			return Step{}, p.errorf(line, "%s names a side dataset, like %s = \"customers\" (a [datasets.customers] table), not %v", op, op, v)
		}
		return Step{Op: planner.Op(op), With: name, Line: line}, nil
	}
	s, ok := v.(string)
	if !ok {
		return Step{}, p.errorf(line, "%s must be a string \"module.function\", not %s", op, tomlKind(v))
	}
	mod, fn, ok := strings.Cut(s, ".")
	if !ok || mod == "" || fn == "" {
		return Step{}, p.errorf(line, "%s = %q is not of the form \"module.function\", like \"wc.split\"", op, s)
	}
	if !validFunction(fn) {
		return Step{}, p.errorf(line, "function name %q in %q is not valid: a name has up to 128 letters, digits, \"_\", \".\" and \"-\", and starts with a letter or \"_\"", fn, s)
	}
	if !slices.Contains(modules, mod) {
		if len(modules) == 0 {
			return Step{}, p.errorf(line, "module %q is not defined: add a [modules.%s] table with go = \"<Go package directory>\" or path = \"<file>.wasm\"",
				mod, quoteKey(mod))
		}
		hint := ""
		if s := suggest(mod, modules); s != "" {
			hint = fmt.Sprintf(" (did you mean %q?)", s)
		}
		return Step{}, p.errorf(line, "module %q is not defined; modules are: %s%s", mod, strings.Join(modules, ", "), hint)
	}
	return Step{Op: planner.Op(op), Module: mod, Function: fn, Line: line}, nil
}

// datasets checks the named datasets: each has a source and steps, every
// name that a step or a source reads exists, no dataset reads itself
// through others, and each is read at least once.
func (p *parser) datasets(docs map[string]datasetDoc, mainSrc Source, main []Step, mods []Module) (map[string]*Chain, error) {
	out := map[string]*Chain{}
	for _, name := range sortedKeys(docs) {
		d := docs[name]
		line := p.idx.line("datasets", name)
		src, err := p.source(d.Source)
		if err != nil {
			return nil, p.errorf(line, "datasets.%s: %v", quoteKey(name), err)
		}
		var steps []Step
		if len(d.Steps) > 0 {
			if steps, err = p.steps(d.Steps, mods); err != nil {
				return nil, p.errorf(line, "datasets.%s: %v", quoteKey(name), err)
			}
		}
		c := &Chain{Name: name, Source: src, Steps: steps, Line: line}
		switch v := d.Cache.(type) {
		case nil:
		case bool:
			c.Cache = v
		case string: // a parameter: cache = "${cache}"
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, p.errorf(line, "datasets.%s.cache must be true or false, not %q", quoteKey(name), v)
			}
			c.Cache = b
		default:
			return nil, p.errorf(line, "datasets.%s.cache must be true or false, not %v", quoteKey(name), v)
		}
		out[name] = c
	}
	// reads are the datasets a chain reads, each with the line that does.
	type read struct {
		name, what string
		line       int
	}
	readsOf := func(src Source, steps []Step) []read {
		var rs []read
		if src.Kind == "dataset" {
			rs = append(rs, read{src.Dataset, fmt.Sprintf("source.dataset = %q", src.Dataset), src.Line})
		}
		for _, st := range steps {
			if readsSide(st.Op) {
				rs = append(rs, read{st.With, fmt.Sprintf("%s = %q", st.Op, st.With), st.Line})
			}
		}
		return rs
	}
	used := map[string]bool{}
	check := func(rs []read, where string) error {
		for _, r := range rs {
			if out[r.name] == nil {
				names := sortedKeys(docs)
				hint := ""
				if s := suggest(r.name, names); s != "" {
					hint = fmt.Sprintf(" (did you mean %q?)", s)
				}
				if len(names) == 0 {
					return p.errorf(r.line, "%s%s: no [datasets.%s] table: add one with its source and steps", where, r.what, quoteKey(r.name))
				}
				return p.errorf(r.line, "%s%s: no [datasets.%s]; datasets are: %s%s", where, r.what, quoteKey(r.name), strings.Join(names, ", "), hint)
			}
			used[r.name] = true
		}
		return nil
	}
	if err := check(readsOf(mainSrc, main), ""); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(out) {
		c := out[name]
		if err := check(readsOf(c.Source, c.Steps), fmt.Sprintf("datasets.%s: ", quoteKey(name))); err != nil {
			return nil, err
		}
	}
	// A dataset that reads itself, through others or not, never ends.
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch state[name] {
		case 1:
			i := slices.Index(path, name)
			return p.errorf(out[name].Line, "datasets %s read each other in a circle: a dataset cannot read itself", strings.Join(append(path[i:], name), " → "))
		case 2:
			return nil
		}
		state[name] = 1
		c := out[name]
		for _, r := range readsOf(c.Source, c.Steps) {
			if err := visit(r.name, append(path, name)); err != nil {
				return err
			}
		}
		state[name] = 2
		return nil
	}
	for _, name := range sortedKeys(out) {
		if err := visit(name, nil); err != nil {
			return nil, err
		}
	}
	for _, name := range sortedKeys(out) {
		if !used[name] {
			return nil, p.errorf(out[name].Line, "datasets.%s is never used: read it with join = %q, union = %q or a source with dataset = %q, or remove it", quoteKey(name), name, name, name)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// sampleStep checks sample = FRACTION or { fraction = F, seed = N }.
func (p *parser) sampleStep(v any, line int) (Step, error) {
	st := Step{Op: planner.OpSample, Line: line}
	fraction := v
	if t, ok := v.(map[string]any); ok {
		fraction = t["fraction"]
		for k, x := range t {
			switch k {
			case "fraction":
			case "seed":
				n, ok := x.(int64)
				if !ok || n < 0 {
					return Step{}, p.errorf(line, "sample seed must be a whole number, 0 or more, not %v", x)
				}
				st.Seed = uint64(n)
			default:
				return Step{}, p.errorf(line, "sample has no setting %q; it takes { fraction = F, seed = N }", k)
			}
		}
	}
	switch f := fraction.(type) {
	case float64:
		st.Fraction = f
	case int64:
		st.Fraction = float64(f)
	case string: // a parameter: sample = "${fraction}"
		var err error
		if st.Fraction, err = strconv.ParseFloat(strings.TrimSpace(f), 64); err != nil {
			st.Fraction = -1
		}
	default:
		st.Fraction = -1
	}
	if !(st.Fraction >= 0 && st.Fraction <= 1) {
		return Step{}, p.errorf(line, "sample takes the fraction of records to keep, 0 to 1 (like sample = 0.1, or { fraction = 0.1, seed = 7 }), not %v", fraction)
	}
	return st, nil
}

// builtinStep checks op = true or op = { partitions = N }, for the
// operators without a function.
func (p *parser) builtinStep(op planner.Op, v any, line int) (Step, error) {
	st := Step{Op: op, Line: line}
	if op == planner.OpCoalesce || op == planner.OpRepartition || op == planner.OpPartitionBy {
		n, ok := v.(int64)
		if !ok || n < 1 || n > 100000 {
			return Step{}, p.errorf(line, "%s = N takes a number of partitions, 1 to 100000, not %v", op, v)
		}
		st.Partitions = int(n)
		return st, nil
	}
	switch v := v.(type) {
	case bool:
		if v {
			return st, nil
		}
	case map[string]any:
		for k, x := range v {
			if k != "partitions" {
				return Step{}, p.errorf(line, "%s has no setting %q; it takes { partitions = N }", op, k)
			}
			n, ok := x.(int64)
			if !ok || n < 1 || n > 100000 {
				return Step{}, p.errorf(line, "%s partitions must be a whole number from 1 to 100000, not %v", op, x)
			}
			st.Partitions = int(n)
		}
		return st, nil
	}
	return Step{}, p.errorf(line, "%s takes no function: write %s = true, or %s = { partitions = N }", op, op, op)
}

func isOp(s string) bool { return slices.Contains(ops(), s) }

// validFunction reports whether name can be a function of a module's
// manifest: [A-Za-z_][A-Za-z0-9_.-]{0,127} (docs/abi.md).
func validFunction(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		other := c == '.' || c == '-' || (c >= '0' && c <= '9')
		if !letter && (i == 0 || !other) {
			return false
		}
	}
	return true
}

// sink checks [sink]; a relative directory resolves against the current
// working directory.
func (p *parser) sink(d *sinkDoc) (Sink, error) {
	if d == nil {
		return Sink{}, p.errorf(0, "missing [sink]: add a [sink] table with text = \"<output directory>\", or text = \"-\" for standard output")
	}
	sk, err := p.sinkOutput(d)
	if err != nil {
		return Sink{}, err
	}
	if d.Take != nil && sk.Kind == "records" {
		return Sink{}, p.errorf(p.idx.line("sink", "take"), "sink.take counts lines of text output; a records sink has no lines")
	}
	if d.Take != nil {
		n, ok := d.Take.(int64)
		if str, isStr := d.Take.(string); isStr {
			// A string lets a parameter set it: take = "${top}".
			v, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
			n, ok = v, err == nil
		}
		if !ok || n < 1 {
			return Sink{}, p.errorf(p.idx.line("sink", "take"), "sink.take must be a whole number of records, 1 or more, not %v", d.Take)
		}
		sk.Take = n
	}
	return sk, nil
}

func (p *parser) sinkOutput(d *sinkDoc) (Sink, error) {
	const missing = "add text = \"<output directory>\", or text = \"-\" for standard output (or json, csv, records, count = true)"
	var given []string
	for _, f := range []struct {
		name string
		v    any
	}{{"text", d.Text}, {"json", d.JSON}, {"csv", d.CSV}, {"records", d.Records}, {"count", d.Count}} {
		if f.v != nil {
			given = append(given, f.name)
		}
	}
	switch {
	case len(given) == 0:
		return Sink{}, p.errorf(p.idx.line("sink"), "[sink] has no output: %s", missing)
	case len(given) > 1:
		return Sink{}, p.errorf(p.idx.line("sink"), "[sink] has %s: a job writes one kind of output", strings.Join(given, " and "))
	case d.Header != nil && d.CSV == nil:
		return Sink{}, p.errorf(p.idx.line("sink", "header"), "sink.header goes with csv = \"<output directory>\"")
	}
	kind := given[0]
	line := p.idx.line("sink", kind)
	switch kind {
	case "count":
		if b, ok := d.Count.(bool); !ok || !b {
			return Sink{}, p.errorf(line, "sink.count = true prints the number of records of the result; it takes no other value, not %v", d.Count)
		}
		if d.Take != nil {
			return Sink{}, p.errorf(p.idx.line("sink", "take"), "sink.take keeps records, and a count sink writes none: remove one")
		}
		return Sink{Kind: "count", Line: line}, nil
	case "records":
		v, ok := d.Records.(string)
		if !ok || v == "" || v == "-" {
			return Sink{}, p.errorf(line, "sink.records must be an output directory for part files of raw records (not standard output), not %v", d.Records)
		}
		abs, err := sinkPath(v)
		if err != nil {
			return Sink{}, p.errorf(line, "sink.records: cannot make %q absolute: %v", v, err)
		}
		return Sink{Kind: "records", Path: abs, Line: line}, nil
	}
	v := map[string]any{"text": d.Text, "json": d.JSON, "csv": d.CSV}[kind]
	sk := Sink{Kind: kind, Line: line}
	if kind == "csv" && d.Header != nil {
		h, ok := d.Header.(bool)
		if !ok {
			return Sink{}, p.errorf(p.idx.line("sink", "header"), "sink.header must be true or false, not %v", d.Header)
		}
		sk.Header = h
	}
	switch v := v.(type) {
	case string:
		switch v {
		case "":
			return Sink{}, p.errorf(line, "sink.%s is empty: give an output directory, or \"-\" for standard output", kind)
		case "-":
			sk.Stdout = true
			return sk, nil
		}
		abs, err := sinkPath(v)
		if err != nil {
			return Sink{}, p.errorf(line, "sink.%s: cannot make %q absolute: %v", kind, v, err)
		}
		sk.Path = abs
		return sk, nil
	default:
		return Sink{}, p.errorf(line, "sink.%s must be a string (a directory, or \"-\"), not %s", kind, tomlKind(v))
	}
}

// sinkPath is an output as the spec names it: a volume location as it
// is, a file path made absolute.
func sinkPath(v string) (string, error) {
	if storage.IsLocation(v) {
		return v, nil
	}
	return filepath.Abs(v)
}

// conf applies [conf] to the defaults, then the --conf pairs.
func (p *parser) conf(d *confDoc, cli map[string]string) (Conf, error) {
	c := DefaultConf()
	for _, v := range d.values() {
		if err := c.set(v.key, v.v); err != nil {
			line := p.idx.line(append([]string{"conf"}, strings.Split(v.key, ".")...)...)
			return Conf{}, p.errorf(line, "conf.%v", err)
		}
	}
	for _, k := range sortedKeys(cli) {
		if err := c.Set(k, cli[k]); err != nil {
			return Conf{}, &Error{Msg: "--conf " + err.Error(), Err: err}
		}
	}
	return c, nil
}
