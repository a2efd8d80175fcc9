package sdk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
)

// JobBuilder builds a job in Go, as Spark programs do: datasets are lazy
// descriptions, transformations return new datasets, and nothing runs
// until the job is run on a grid. It produces the same job a TOML spec
// describes (docs/jobspec.md), and Spec shows that spec.
type JobBuilder struct {
	name    string
	modules map[string]*ModuleRef
	conf    map[string]string
	sink    *Dataset
	err     error
}

// NewJob starts a job.
func NewJob(name string) *JobBuilder {
	return &JobBuilder{name: name, modules: map[string]*ModuleRef{}, conf: map[string]string{}}
}

// ModuleRef is a guest module of a job; Func names its functions.
type ModuleRef struct {
	name, kind, path string
}

// ModuleSource is where a module comes from: GoGuest or WasmFile.
type ModuleSource struct{ kind, path string }

// GoGuest is a Go guest package's directory, built with GOOS=wasip1 when
// the job is built.
func GoGuest(dir string) ModuleSource { return ModuleSource{"go", dir} }

// WasmFile is a prebuilt module file.
func WasmFile(path string) ModuleSource { return ModuleSource{"path", path} }

// GuestDir is a guest directory in any language, as a spec's dir = "...":
// built as a Go guest if it holds .go files, its prebuilt guest.wasm
// otherwise.
func GuestDir(dir string) ModuleSource { return ModuleSource{"dir", dir} }

// Module declares a module under name.
func (j *JobBuilder) Module(name string, src ModuleSource) *ModuleRef {
	abs, err := filepath.Abs(src.path)
	if err != nil && j.err == nil {
		j.err = err
	}
	m := &ModuleRef{name: name, kind: src.kind, path: abs}
	j.modules[name] = m
	return m
}

// Func names a function of the module.
func (m *ModuleRef) Func(name string) Func { return Func(m.name + "." + name) }

// Func is a guest function, "module.function".
type Func string

// Conf sets a setting, as --conf does (docs/jobspec.md lists them), like
// Conf("partitions", "8") or Conf("task.memory", "128MiB").
func (j *JobBuilder) Conf(key, value string) *JobBuilder {
	j.conf[key] = value
	return j
}

// Dataset is a lazy dataset of a job.
type Dataset struct {
	job    *JobBuilder
	parent *Dataset
	// What this dataset is: a source (TOML lines for [source]), a step
	// (one TOML line for [[steps]]), or a sink (lines for [sink]).
	source, step, sink string
	// side is the other dataset of a join or union step.
	side  *Dataset
	cache bool
}

// TextFile is a source of text files, one record per line. A glob is a
// path on the machine that builds the job (made absolute), or a location
// in a volume granted to the job's tenant: "data:books/*.txt",
// "s3://bucket/books/*.txt" (docs/storage.md). The other file sources and
// the sinks take the same.
func (j *JobBuilder) TextFile(glob string) *Dataset {
	return &Dataset{job: j, source: "text = " + quote(absGlob(glob))}
}

// Generate is a source of n synthetic records: the numbers 0..n-1, each
// with an empty key and its number in decimal as the value.
func (j *JobBuilder) Generate(n int64) *Dataset {
	return &Dataset{job: j, source: "generate = " + strconv.FormatInt(n, 10)}
}

// Parallelize is a source of the given values, one record each (an empty
// key, the value), as Spark's parallelize: they are written into the job's
// spec (source.inline), so they travel with the job to any grid, remote
// ones included. parts is how many splits they make (0: the grid decides).
// Values must be valid UTF-8 (a TOML string's rule); keep them to what a
// job spec should carry (a few MB), and put larger inputs in files.
func (j *JobBuilder) Parallelize(values []string, parts int) *Dataset {
	var b strings.Builder
	b.WriteString("inline = [")
	for i, v := range values {
		if !utf8.ValidString(v) && j.err == nil {
			j.err = fmt.Errorf("job %s: Parallelize: value %d (%.40q) is not valid UTF-8, which a job spec cannot carry: put such data in a file", j.name, i, v)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quote(v))
	}
	b.WriteString("]")
	if parts > 0 {
		fmt.Fprintf(&b, "\nparts = %d", parts)
	}
	return &Dataset{job: j, source: b.String()}
}

// JSONFile is a source of JSON lines: one JSON value per line, each
// checked (a line that is not valid JSON fails the job, naming the file).
func (j *JobBuilder) JSONFile(glob string) *Dataset {
	return &Dataset{job: j, source: "json = " + quote(absGlob(glob))}
}

// CSVFile is a source of CSV files whose first line is a header: one
// record per row (an empty key, the row as the value; the guest splits the
// fields).
func (j *JobBuilder) CSVFile(glob string) *Dataset {
	return &Dataset{job: j, source: "csv = " + quote(absGlob(glob))}
}

// RecordFile is a source of fixed-length binary records: size bytes each,
// keyed by their first keySize bytes.
func (j *JobBuilder) RecordFile(glob string, size, keySize int) *Dataset {
	return &Dataset{job: j, source: fmt.Sprintf("records = %s\nrecord_size = %d\nkey_size = %d", quote(absGlob(glob)), size, keySize)}
}

// absGlob makes a file path absolute; a volume location ("data:books/*",
// "s3://bucket/key") is the grid's to resolve, and stays as it is.
func absGlob(g string) string {
	if storage.IsLocation(g) {
		return g
	}
	if abs, err := filepath.Abs(g); err == nil {
		return abs
	}
	return g
}

func (d *Dataset) then(step string) *Dataset { return &Dataset{job: d.job, parent: d, step: step} }

// Map applies f to each record: one record in, one out.
func (d *Dataset) Map(f Func) *Dataset { return d.then("map = " + quote(string(f))) }

// FlatMap applies f to each record: zero or more records out.
func (d *Dataset) FlatMap(f Func) *Dataset { return d.then("flat_map = " + quote(string(f))) }

// Filter keeps the records f accepts.
func (d *Dataset) Filter(f Func) *Dataset { return d.then("filter = " + quote(string(f))) }

// MapValues applies the map function f to each record and keeps the
// record's key: the record takes the value f returns. A dataset
// partitioned by key stays partitioned (a later join need not shuffle it).
func (d *Dataset) MapValues(f Func) *Dataset { return d.then("map_values = " + quote(string(f))) }

// KeyBy applies the map function f to each record and keeps the record's
// value: the record takes the key f returns.
func (d *Dataset) KeyBy(f Func) *Dataset { return d.then("key_by = " + quote(string(f))) }

// MapPartitions calls the flat_map function f once per partition, with one
// record whose value is the whole partition as a batch (decode it with
// the guest SDK's Records; docs/abi.md): for per-partition setup or
// partial results, as Spark's mapPartitions. The partition must fit in
// the task's memory.
func (d *Dataset) MapPartitions(f Func) *Dataset {
	return d.then("map_partitions = " + quote(string(f)))
}

// Sample keeps each record with probability fraction (Spark's sample
// without replacement); the same seed keeps the same records.
func (d *Dataset) Sample(fraction float64, seed uint64) *Dataset {
	return d.then(fmt.Sprintf("sample = { fraction = %s, seed = %d }", strconv.FormatFloat(fraction, 'g', -1, 64), seed))
}

// AggregateByKey folds each key's values into an accumulator: create (a
// map function) makes one value an accumulator, merge (a reduce function)
// merges two. Accumulators are merged on the map side first, as Spark's
// aggregateByKey and combineByKey do.
func (d *Dataset) AggregateByKey(create, merge Func) *Dataset {
	return d.then(fmt.Sprintf("aggregate_by_key = { create = %s, merge = %s }", quote(string(create)), quote(string(merge))))
}

// Cogroup groups d and other by key: one record per key of either, whose
// value lists two lists, d's values and other's (grouped-values encoding,
// nested: decode the value, then each of its two elements).
func (d *Dataset) Cogroup(other *Dataset) *Dataset { return d.join("cogroup", other) }

// Cache keeps d once computed: however many datasets read it, it is
// computed once and its partitions stay on the agents that computed them
// (recomputed from its lineage if an agent is lost). Without Cache, d is
// computed again for every dataset that reads it, as in Spark. It returns
// d.
func (d *Dataset) Cache() *Dataset {
	d.cache = true
	return d
}

// ReduceByKey folds the values of each key with f (associative and
// commutative), combining on the map side first. The number of partitions
// is the job's partitions setting.
func (d *Dataset) ReduceByKey(f Func) *Dataset { return d.then("reduce_by_key = " + quote(string(f))) }

// SortByKey sorts the records by key (bytes order) over partitions range
// partitions (0: the job's partitions setting), from a sample of the keys.
func (d *Dataset) SortByKey(partitions int) *Dataset { return d.builtin("sort_by_key", partitions) }

// GroupByKey gathers each key's values into one record whose value lists
// them (decode it in a guest with the SDK's grouped-values helper; the
// encoding is in docs/abi.md), over partitions hash partitions (0: the
// job's setting).
func (d *Dataset) GroupByKey(partitions int) *Dataset { return d.builtin("group_by_key", partitions) }

// Distinct keeps one of each distinct (key, value) record.
func (d *Dataset) Distinct(partitions int) *Dataset { return d.builtin("distinct", partitions) }

// CountByKey counts the records of each key: (key, count in decimal),
// combined on the map side.
func (d *Dataset) CountByKey(partitions int) *Dataset { return d.builtin("count_by_key", partitions) }

// Coalesce lowers d's partitions to n without a shuffle: each task reads a
// run of consecutive partitions (a sorted dataset stays sorted). d must
// come from a shuffle (ReduceByKey, SortByKey, ...).
func (d *Dataset) Coalesce(n int) *Dataset { return d.then("coalesce = " + strconv.Itoa(n)) }

// Repartition spreads d's records evenly over n partitions (round robin,
// whatever their keys), with a shuffle.
func (d *Dataset) Repartition(n int) *Dataset { return d.then("repartition = " + strconv.Itoa(n)) }

// PartitionBy hash-partitions d's records by key into n partitions.
func (d *Dataset) PartitionBy(n int) *Dataset { return d.then("partition_by = " + strconv.Itoa(n)) }

func (d *Dataset) builtin(op string, partitions int) *Dataset {
	if partitions > 0 {
		return d.then(op + " = { partitions = " + strconv.Itoa(partitions) + " }")
	}
	return d.then(op + " = true")
}

// Join joins d with other by key: for every key on both sides, one record
// per (d's value, other's value) pair, whose value lists the two (read it
// with the guest SDK's grouped-values helper, docs/abi.md). Both sides
// are shuffled by key, except a cached side that is partitioned by key
// into the job's partitions already (a ReduceByKey or GroupByKey result).
func (d *Dataset) Join(other *Dataset) *Dataset { return d.join("join", other) }

// LeftOuterJoin is Join that also keeps d's records whose key other lacks,
// each with a list of d's value alone.
func (d *Dataset) LeftOuterJoin(other *Dataset) *Dataset { return d.join("left_outer_join", other) }

// Union is the records of d and of other, unchanged; the steps after it
// run on both.
func (d *Dataset) Union(other *Dataset) *Dataset { return d.join("union", other) }

func (d *Dataset) join(op string, other *Dataset) *Dataset {
	j := d.then("")
	j.side = other
	j.step = op
	return j
}

// Sink says where a job's result goes: Text, Stdout or Records.
type Sink struct{ toml string }

// Text writes part files of "key<TAB>value" lines (the value alone when the
// key is empty) into dir.
func Text(dir string) Sink { return Sink{"text = " + quote(absGlob(dir))} }

// Stdout prints the result's lines once the job has succeeded.
func Stdout() Sink { return Sink{`text = "-"`} }

// Records writes part files of raw records (key then value) into dir.
func Records(dir string) Sink { return Sink{"records = " + quote(absGlob(dir))} }

// JSON writes part files of JSON lines, {"key":"…","value":"…"} (a key or
// value that is not UTF-8 as "key_base64" or "value_base64"), into dir,
// or prints them for "-".
func JSON(dir string) Sink { return Sink{"json = " + quote(outPath(dir))} }

// CSV writes part files of key,value rows (RFC 4180 quoting) into dir, or
// prints them for "-"; with header, each part starts with "key,value"
// (printed once).
func CSV(dir string, header bool) Sink {
	return Sink{"csv = " + quote(outPath(dir)) + "\nheader = " + strconv.FormatBool(header)}
}

func outPath(dir string) string {
	if dir == "-" {
		return dir
	}
	return absGlob(dir)
}

// Write makes d the job's result, written to s. A job has one result.
func (d *Dataset) Write(s Sink) { d.writeSink(s.toml) }

// Take makes the first n records of d, in partition order, the job's
// result, written to s (Spark's take: after SortByKey, the top n).
func (d *Dataset) Take(n int64, s Sink) { d.writeSink(s.toml + "\ntake = " + strconv.FormatInt(n, 10)) }

func (d *Dataset) writeSink(toml string) {
	if d.job.sink != nil && d.job.err == nil {
		d.job.err = fmt.Errorf("job %s: a job has one result, and Write was called twice", d.job.name)
	}
	d.job.sink = &Dataset{job: d.job, parent: d, sink: toml}
}

// Grid runs jobs: a Remote grid, or an embedded one (package sdk/local).
type Grid interface {
	// RunJob runs job, writing a standard-output result to w.
	RunJob(ctx context.Context, job *Job, w io.Writer) error
}

// RunJob runs job as Run does, for Collect, Count and JobBuilder.Run.
func (r *Remote) RunJob(ctx context.Context, job *Job, w io.Writer) error {
	_, err := r.Run(ctx, job, w)
	return err
}

// Record is a record of a collected dataset.
type Record struct{ Key, Value []byte }

// Collect runs the job that computes d on g and returns d's records, in
// partition order (Spark's collect): for results that fit in memory.
// The job is d's job with d as its result, whatever Write set.
func (d *Dataset) Collect(ctx context.Context, g Grid) ([]Record, error) {
	var out bytes.Buffer
	if err := d.action(ctx, g, `json = "-"`, &out); err != nil {
		return nil, err
	}
	var recs []Record
	dec := json.NewDecoder(&out)
	for {
		var line map[string]string
		if err := dec.Decode(&line); err == io.EOF {
			return recs, nil
		} else if err != nil {
			return nil, fmt.Errorf("job %s: collect: %w", d.job.name, err)
		}
		var rec Record
		var err error
		if rec.Key, err = field(line, "key"); err == nil {
			rec.Value, err = field(line, "value")
		}
		if err != nil {
			return nil, fmt.Errorf("job %s: collect: %w", d.job.name, err)
		}
		recs = append(recs, rec)
	}
}

// field reads name, or name_base64, of a JSON sink's line.
func field(line map[string]string, name string) ([]byte, error) {
	if b64, ok := line[name+"_base64"]; ok {
		return base64.StdEncoding.DecodeString(b64)
	}
	return []byte(line[name]), nil
}

// Count runs the job that computes d on g and returns how many records d
// has (Spark's count); the records stay on the agents.
func (d *Dataset) Count(ctx context.Context, g Grid) (int64, error) {
	var out bytes.Buffer
	if err := d.action(ctx, g, "count = true", &out); err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(strings.TrimSpace(out.String()), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("job %s: count: the result %q is not a number", d.job.name, out.String())
	}
	return n, nil
}

// action runs d's job with d as the result, written to sink.
func (d *Dataset) action(ctx context.Context, g Grid, sink string, w io.Writer) error {
	j := *d.job
	j.sink = &Dataset{job: &j, parent: d, sink: sink}
	return j.Run(ctx, g, w)
}

// Run builds the job and runs it on g, a Remote or an embedded grid
// (package sdk/local), writing a standard-output result to w.
func (j *JobBuilder) Run(ctx context.Context, g Grid, w io.Writer) error {
	built, err := j.Build(ctx)
	if err != nil {
		return err
	}
	return g.RunJob(ctx, built, w)
}

// Spec renders the job as the TOML spec that describes it.
func (j *JobBuilder) Spec() (string, error) {
	if j.err != nil {
		return "", j.err
	}
	if j.sink == nil {
		return "", fmt.Errorf("job %s has no result: call Write on the dataset it computes", j.name)
	}
	// Count the readers of every dataset, and find the sides of joins.
	readers := map[*Dataset]int{}
	sides := map[*Dataset]bool{}
	var visit func(d *Dataset)
	visit = func(d *Dataset) {
		for _, p := range []*Dataset{d.parent, d.side} {
			if p == nil {
				continue
			}
			readers[p]++
			if readers[p] == 1 {
				visit(p)
			}
		}
		if d.side != nil {
			sides[d.side] = true
		}
	}
	visit(j.sink)
	// A dataset read by a join or union, by several datasets, or cached
	// is a [datasets.NAME] table, named in the order the spec reads them.
	isNamed := func(d *Dataset) bool {
		return d.source == "" && (d.cache || sides[d] || readers[d] > 1) || d.source != "" && (sides[d] || readers[d] > 1 || d.cache)
	}
	names := map[*Dataset]string{}
	var queue []*Dataset
	nameOf := func(d *Dataset) string {
		if n, ok := names[d]; ok {
			return n
		}
		n := fmt.Sprintf("side%d", len(queue)+1)
		names[d] = n
		queue = append(queue, d)
		return n
	}
	// chain renders the source and steps that compute end: back through
	// parents to a source or a named dataset.
	chain := func(end *Dataset) (source string, steps []string) {
		var ds []*Dataset
		d := end
		for ; d.source == "" && (d == end || !isNamed(d)); d = d.parent {
			ds = append(ds, d)
		}
		if d.source != "" && (d == end || !isNamed(d)) {
			source = d.source
		} else {
			source = "dataset = " + quote(nameOf(d))
		}
		slices.Reverse(ds)
		for _, d := range ds {
			step := d.step
			if d.side != nil {
				step += " = " + quote(nameOf(d.side))
			}
			steps = append(steps, step)
		}
		return source, steps
	}
	var b strings.Builder
	fmt.Fprintf(&b, "name = %s\n", quote(j.name))
	mods := make([]string, 0, len(j.modules))
	for n := range j.modules {
		mods = append(mods, n)
	}
	slices.Sort(mods)
	for _, n := range mods {
		m := j.modules[n]
		fmt.Fprintf(&b, "\n[modules.%s]\n%s = %s\n", quote(n), m.kind, quote(m.path))
	}
	result := j.sink.parent
	var source string
	var steps []string
	if isNamed(result) {
		source = "dataset = " + quote(nameOf(result))
	} else {
		source, steps = chain(result)
	}
	fmt.Fprintf(&b, "\n[source]\n%s\n", source)
	for _, st := range steps {
		fmt.Fprintf(&b, "\n[[steps]]\n%s\n", st)
	}
	for i := 0; i < len(queue); i++ {
		d := queue[i]
		source, steps := chain(d)
		fmt.Fprintf(&b, "\n[datasets.%s]\nsource = { %s }\n", names[d], strings.ReplaceAll(source, "\n", ", "))
		if len(steps) > 0 {
			for i, st := range steps {
				steps[i] = "{ " + st + " }"
			}
			fmt.Fprintf(&b, "steps = [%s]\n", strings.Join(steps, ", "))
		}
		if d.cache {
			b.WriteString("cache = true\n")
		}
	}
	fmt.Fprintf(&b, "\n[sink]\n%s\n", j.sink.sink)
	return b.String(), nil
}

// Build checks the job and builds its modules: the Job that Remote.Run
// and the embedded grid's Run (package sdk/local) take.
func (j *JobBuilder) Build(ctx context.Context) (*Job, error) {
	text, err := j.Spec()
	if err != nil {
		return nil, err
	}
	// A spec is parsed relative to a file; the builder's paths are
	// absolute already, so a name in the working directory will do.
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	file := filepath.Join(wd, j.name+".job.toml")
	spec, err := jobspec.Parse([]byte(text), file, nil, j.conf)
	if err == nil {
		err = spec.Check()
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w\nthe spec:\n%s", j.name, err, text)
	}
	job, err := loadModules(ctx, spec)
	if err != nil {
		return nil, err
	}
	job.text, job.Conf = []byte(text), j.conf
	return job, nil
}

// Explain is the job's physical plan, as `grid run --explain` prints it:
// its stages, what each fuses, and where it shuffles. slots sizes the
// default partitions as a grid of that many task slots would.
func (j *JobBuilder) Explain(slots int) (string, error) {
	text, err := j.Spec()
	if err != nil {
		return "", err
	}
	spec, err := jobspec.Parse([]byte(text), filepath.Join(os.TempDir(), j.name+".job.toml"), nil, j.conf)
	if err != nil {
		return "", err
	}
	return spec.Explain(slots)
}

// quote writes s as a TOML basic string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}
