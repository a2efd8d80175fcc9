package jobspec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"
	"github.com/wasmgrid/wasmgrid/planner"
)

// Spec is a validated job spec with its parameters substituted and its
// settings resolved.
type Spec struct {
	Name    string
	File    string            // absolute path of the spec file
	Dir     string            // its directory (job_dir)
	Params  map[string]string // resolved values, job_dir included
	Modules []Module          // sorted by name
	Source  Source
	Steps   []Step
	Sink    Sink
	Conf    Conf
	// Datasets are the named datasets that join and union steps and
	// dataset sources read: each its own source and steps.
	Datasets map[string]*Chain

	display string // the file as the caller named it, for messages
}

// Display is the spec file as the caller named it, for messages.
func (s *Spec) Display() string { return s.display }

// Module is a WebAssembly module that steps refer to by Name. Exactly one of
// Path, GoDir and Dir is set.
type Module struct {
	Name  string
	Path  string // absolute path of a prebuilt .wasm module, or ""
	GoDir string // absolute directory of a Go guest package, or ""
	// Dir is an absolute guest directory, or "": built as a Go guest if
	// it holds .go files, otherwise its prebuilt guest.wasm is used.
	Dir  string
	Line int
}

// Source is the job's input.
type Source struct {
	Kind string // "text": text files, one record per line; "csv": the same with a header line; "json": JSON lines, each checked; "records": fixed-length binary records; "generate": synthetic; "inline": values in the spec; "dataset": a named dataset's records
	// Header, for "csv": the first line of each file is a header, not a
	// record.
	Header bool
	// Count, for "generate": records 0..Count-1, each with an empty key and
	// its number in decimal as the value.
	Count int64
	// Globs are absolute glob patterns of files, or of a volume's files
	// as storage.Resolve reads them ("vol:path/*.txt", "s3://b/k/*").
	Globs []string
	// RecordSize and KeySize, for "records": each record is RecordSize
	// bytes, of which the first KeySize are its key and the rest its value.
	RecordSize, KeySize int
	// Dataset, for "dataset", names the [datasets.NAME] read.
	Dataset string
	// Inline, for "inline", are the values of the records (each with an
	// empty key), written in the spec: they travel with the job, so a
	// remote grid needs no file. Parts is how many splits they make (0:
	// the grid decides).
	Inline []string
	Parts  int
	Line   int
}

// ops returns the operators of steps in documentation order; their
// meanings are planner.Op's, and docs/jobspec.md says how each is written.
func ops() []string {
	return []string{string(planner.OpMap), string(planner.OpFlatMap), string(planner.OpFilter), string(planner.OpMapValues), string(planner.OpKeyBy), string(planner.OpMapPartitions), string(planner.OpSample), string(planner.OpReduceByKey), string(planner.OpAggregateByKey), string(planner.OpSortByKey), string(planner.OpGroupByKey), string(planner.OpDistinct), string(planner.OpCountByKey), string(planner.OpCoalesce), string(planner.OpJoin), string(planner.OpLeftOuterJoin), string(planner.OpCogroup), string(planner.OpRepartition), string(planner.OpPartitionBy), string(planner.OpUnion)}
}

// readsSide reports whether a step of op brings a named side dataset in:
// join = "customers", union = "more".
func readsSide(op planner.Op) bool {
	switch op {
	case planner.OpJoin, planner.OpLeftOuterJoin, planner.OpUnion, planner.OpCogroup:
		return true
	}
	return false
}

// builtin reports whether a step of op takes no guest function: = true,
// { partitions = N }, coalesce = N, or a sample's fraction.
func builtin(op planner.Op) bool {
	switch op {
	case planner.OpSortByKey, planner.OpGroupByKey, planner.OpDistinct, planner.OpCountByKey, planner.OpCoalesce, planner.OpRepartition, planner.OpPartitionBy, planner.OpSample:
		return true
	}
	return false
}

// Step is one operator of the job's chain, applying Module's Function.
type Step struct {
	Op       planner.Op // one of ops(); aggregate_by_key is lowered to two datasets
	Module   string     // "" for the operators without a function (builtin)
	Function string
	// With names the side dataset of a join or union.
	With string
	// Partitions of a builtin operator's shuffle; 0 means the job's
	// partitions setting.
	Partitions int
	// MergeModule and MergeFunction are aggregate_by_key's merge
	// function (Module and Function are its create function).
	MergeModule, MergeFunction string
	// Fraction and Seed of a sample.
	Fraction float64
	Seed     uint64
	Line     int
}

// Chain is a named dataset: a source and its steps.
type Chain struct {
	Name   string
	Source Source
	Steps  []Step
	// Cache computes the dataset once, however many steps and sources
	// read it, and keeps it on the agents; a dataset that is not cached
	// is computed again for each reader (as in Spark).
	Cache bool
	Line  int
}

// Sink is the job's output.
type Sink struct {
	// Kind is the format of the result's part-NNNNN files: "text"
	// ("key<TAB>value" lines), "json" (JSON lines), "csv" (key,value
	// rows), "records" (raw key‖value records), or "count" (no records:
	// the job prints how many there are).
	Kind string
	// Path is the output directory: an absolute path, or a volume
	// location ("vol:path", "s3://bucket/key"); "" for Stdout and count.
	Path string
	// Stdout prints the result once the job has succeeded instead of
	// writing a directory (text = "-", json = "-", csv = "-").
	Stdout bool
	// Header, for "csv": each part file starts with the line "key,value"
	// (standard output gets it once).
	Header bool
	// Take, if not zero, keeps only the first Take records of the result,
	// in partition order (Spark's take: the top N after a sort).
	Take int64
	Line int
}

// fileDoc is the shape of a spec file for strict decoding. Leaves are `any`
// so that their types are checked here, with messages that say what to
// write; the decoder checks the keys.
type fileDoc struct {
	Name     any                   `toml:"name"`
	Params   map[string]any        `toml:"params"`
	Modules  map[string]moduleDoc  `toml:"modules"`
	Source   *sourceDoc            `toml:"source"`
	Steps    []map[string]any      `toml:"steps"`
	Sink     *sinkDoc              `toml:"sink"`
	Datasets map[string]datasetDoc `toml:"datasets"`
	Conf     confDoc               `toml:"conf"`
}

type datasetDoc struct {
	Source *sourceDoc       `toml:"source"`
	Steps  []map[string]any `toml:"steps"`
	Cache  any              `toml:"cache"`
}

type moduleDoc struct {
	Go   any `toml:"go"`
	Dir  any `toml:"dir"`
	Path any `toml:"path"`
}

type sourceDoc struct {
	Dataset    any `toml:"dataset"`
	Inline     any `toml:"inline"`
	Parts      any `toml:"parts"`
	Generate   any `toml:"generate"`
	CSV        any `toml:"csv"`
	JSON       any `toml:"json"`
	Header     any `toml:"header"`
	Text       any `toml:"text"`
	Records    any `toml:"records"`
	RecordSize any `toml:"record_size"`
	KeySize    any `toml:"key_size"`
}

type sinkDoc struct {
	Text    any `toml:"text"`
	JSON    any `toml:"json"`
	CSV     any `toml:"csv"`
	Header  any `toml:"header"`
	Count   any `toml:"count"`
	Records any `toml:"records"`
	Take    any `toml:"take"`
}

type confDoc struct {
	Partitions any `toml:"partitions"`
	Source     struct {
		SplitSize any `toml:"split_size"`
		MaxRecord any `toml:"max_record"`
	} `toml:"source"`
	Task struct {
		Memory      any `toml:"memory"`
		Timeout     any `toml:"timeout"`
		MaxAttempts any `toml:"max_attempts"`
		MaxOutput   any `toml:"max_output"`
	} `toml:"task"`
	Batch struct {
		Size any `toml:"size"`
	} `toml:"batch"`
	Shuffle struct {
		Memory           any `toml:"memory"`
		CompressionLevel any `toml:"compression_level"`
	} `toml:"shuffle"`
	Sink struct {
		Overwrite any `toml:"overwrite"`
	} `toml:"sink"`
	Join struct {
		BroadcastThreshold any `toml:"broadcast_threshold"`
	} `toml:"join"`
}

type confValue struct {
	key string
	v   any
}

// values lists the settings written in the file, in ConfKeys order.
func (d *confDoc) values() []confValue {
	all := []confValue{
		{"partitions", d.Partitions},
		{"source.split_size", d.Source.SplitSize},
		{"source.max_record", d.Source.MaxRecord},
		{"task.memory", d.Task.Memory},
		{"task.timeout", d.Task.Timeout},
		{"task.max_attempts", d.Task.MaxAttempts},
		{"task.max_output", d.Task.MaxOutput},
		{"batch.size", d.Batch.Size},
		{"shuffle.memory", d.Shuffle.Memory},
		{"shuffle.compression_level", d.Shuffle.CompressionLevel},
		{"sink.overwrite", d.Sink.Overwrite},
		{"join.broadcast_threshold", d.Join.BroadcastThreshold},
	}
	return slices.DeleteFunc(all, func(c confValue) bool { return c.v == nil })
}

// Load reads the spec file at path and parses it with Parse.
func Load(path string, params, conf map[string]string) (*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read the job spec: %v", err), Err: err}
	}
	return Parse(data, path, params, conf)
}

// Parse parses and validates a job spec. file names the spec in messages
// and its directory is job_dir; params are the --param pairs and conf the
// --conf pairs (either may be nil). Parse reads no files: see Check.
// Errors are *Error.
func Parse(data []byte, file string, params, conf map[string]string) (*Spec, error) {
	if file == "" {
		return nil, &Error{Msg: "jobspec: Parse needs the spec's file name"}
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, &Error{File: file, Msg: fmt.Sprintf("cannot make the path absolute: %v", err), Err: err}
	}
	p := &parser{file: file, dir: filepath.Dir(abs)}
	// Editors on some systems start files with a byte order mark, which
	// TOML does not allow; without it, lines keep their numbers.
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	doc, values, err := p.decode(data, params)
	if err != nil {
		return nil, err
	}
	spec := &Spec{File: abs, Dir: p.dir, Params: values, display: file}
	if spec.Name, err = p.name(doc.Name, abs); err != nil {
		return nil, err
	}
	if spec.Modules, err = p.modules(doc.Modules); err != nil {
		return nil, err
	}
	if spec.Source, err = p.source(doc.Source); err != nil {
		return nil, err
	}
	// A job without steps writes its source as it is (in another format,
	// say).
	if spec.Steps, err = p.steps(doc.Steps, spec.Modules); err != nil {
		return nil, err
	}
	if spec.Datasets, err = p.datasets(doc.Datasets, spec.Source, spec.Steps, spec.Modules); err != nil {
		return nil, err
	}
	if spec.Sink, err = p.sink(doc.Sink); err != nil {
		return nil, err
	}
	if spec.Conf, err = p.conf(&doc.Conf, conf); err != nil {
		return nil, err
	}
	return spec, nil
}

// parser holds what the steps of Parse share.
type parser struct {
	file string    // as named by the caller, for messages
	dir  string    // job_dir
	idx  *docIndex // of the document after substitution
}

func (p *parser) errorf(line int, format string, args ...any) *Error {
	return &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// decode checks the syntax, substitutes parameters in the raw text and
// decodes the result strictly. It returns the parameters' values.
func (p *parser) decode(data []byte, cli map[string]string) (*fileDoc, map[string]string, error) {
	var loose map[string]any
	if err := toml.Unmarshal(data, &loose); err != nil {
		return nil, nil, p.tomlError(err)
	}
	idx, err := indexDocument(data)
	if err != nil {
		return nil, nil, p.tomlError(err)
	}
	p.idx = idx
	r, err := p.params(loose["params"], cli)
	if err != nil {
		return nil, nil, err
	}
	text, err := p.substitute(data, r)
	if err != nil {
		return nil, nil, err
	}
	if p.idx, err = indexDocument(text); err != nil {
		return nil, nil, p.errorf(0, "internal error: the spec does not parse after substituting parameters: %v", err)
	}
	var doc fileDoc
	if err := toml.NewDecoder(bytes.NewReader(text)).DisallowUnknownFields().Decode(&doc); err != nil {
		return nil, nil, p.tomlError(err)
	}
	values := map[string]string{jobDirParam: p.dir}
	for name, v := range r.values {
		values[name] = v
	}
	for name, v := range cli {
		values[name] = v
	}
	return &doc, values, nil
}

// params checks [params] and the --param pairs, and resolves every
// parameter that has a default.
func (p *parser) params(table any, cli map[string]string) (*resolver, error) {
	r := &resolver{
		file:     p.file,
		dir:      p.dir,
		cli:      cli,
		defaults: map[string]paramDefault{},
		values:   map[string]string{},
		visiting: map[string]bool{},
	}
	if table != nil {
		m, ok := table.(map[string]any)
		if !ok {
			return nil, p.errorf(p.idx.line("params"), "params must be a table of strings, not %s", tomlKind(table))
		}
		for _, name := range sortedKeys(m) {
			v := m[name]
			line := p.idx.line("params", name)
			s, ok := v.(string)
			switch {
			case name == jobDirParam:
				return nil, p.errorf(line, "parameter job_dir is built in (the directory of %s) and cannot be set under [params]", p.file)
			case !validParamName(name):
				return nil, p.errorf(line, "parameter name %q cannot be referred to: a name has letters, digits, \"_\" and \"-\" and starts with a letter or \"_\"", name)
			case !ok:
				hint := ""
				switch v.(type) {
				case int64, float64, bool:
					hint = ": put its value in quotes"
				}
				return nil, p.errorf(line, "parameter %q must be a string, not %s%s", name, tomlKind(v), hint)
			}
			r.defaults[name] = paramDefault{value: s, line: line}
		}
	}
	if err := p.checkCLIParams(r, cli); err != nil {
		return nil, err
	}
	for _, name := range sortedKeys(r.defaults) {
		if _, err := r.value(name, r.defaults[name].line, nil); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// checkCLIParams rejects a --param that sets job_dir or that the spec
// neither declares nor refers to (a typo).
func (p *parser) checkCLIParams(r *resolver, cli map[string]string) error {
	known := map[string]bool{}
	for name := range r.defaults {
		known[name] = true
	}
	for _, s := range p.idx.strs {
		for _, name := range refNames(s.value) {
			if name != jobDirParam {
				known[name] = true
			}
		}
	}
	list := sortedKeys(known)
	for _, name := range sortedKeys(cli) {
		switch {
		case name == jobDirParam:
			return &Error{Msg: fmt.Sprintf("--param job_dir cannot be set: job_dir is built in (the directory of %s)", p.file)}
		case known[name]:
			continue
		case len(list) == 0:
			return &Error{Msg: fmt.Sprintf("--param %s=%s is not used by %s, which has no parameters", name, clip(cli[name]), p.file)}
		default:
			hint := ""
			if s := suggest(name, list); s != "" {
				hint = fmt.Sprintf(" (did you mean %q?)", s)
			}
			return &Error{Msg: fmt.Sprintf("--param %s=%s is not used by %s; its parameters are: %s%s",
				name, clip(cli[name]), p.file, strings.Join(list, ", "), hint)}
		}
	}
	return nil
}

// substitute replaces the references in every string value outside [params]
// with the parameters' values, re-quoting the literal so that the document
// stays valid and every line keeps its number.
func (p *parser) substitute(data []byte, r *resolver) ([]byte, error) {
	var out bytes.Buffer
	last := 0
	for _, s := range p.idx.strs {
		if s.path[0] == "params" || !strings.Contains(s.value, "$") {
			continue
		}
		v, err := r.expand(s.value, s.line, nil)
		if err != nil {
			return nil, err
		}
		out.Write(data[last:s.start])
		out.WriteString(quoteTOML(v, bytes.Count(data[s.start:s.end], []byte("\n"))))
		last = s.end
	}
	if last == 0 {
		return data, nil
	}
	out.Write(data[last:])
	return out.Bytes(), nil
}

// sortedKeys returns the keys of m in order, so that the first of several
// problems is always the same one.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
