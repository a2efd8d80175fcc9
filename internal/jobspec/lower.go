package jobspec

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
)

// Split sizes that a grid picks when source.split_size is not set.
const (
	minAutoSplit = 1 << 20
	maxAutoSplit = 64 << 20
)

// maxPlanDatasets bounds the datasets a spec expands to: a plan that
// large is a spec that recomputes uncached datasets many times over.
const maxPlanDatasets = 10000

// Inputs finds the files that sources name: the I/O that lowering a spec
// needs, kept out of it. storage.Finder finds them in a tenant's volumes.
type Inputs interface {
	// Glob lists the files a source glob names; none is an error.
	Glob(loc string) ([]storage.File, error)
}

// Lowering is what lowering a spec needs besides the spec.
type Lowering struct {
	// Slots is the number of tasks the grid runs at once: the default of
	// partitions, and what sizes splits when source.split_size is not set.
	Slots int
	// Inputs finds the files of text, csv, json and records sources.
	Inputs Inputs
	// MaxSplits, if not 0, bounds the splits of all sources together
	// (limits.splits).
	MaxSplits int
	// Check, if set, vets each step that calls a guest function (against
	// its module's manifest, say) before it is lowered.
	Check func(Step) error
}

// Lower turns the spec into the logical DAG the planner builds a plan
// from: its main chain, and the chain of each named dataset where a step
// or a source reads it (once for a cached dataset, at every read
// otherwise, as Spark recomputes an uncached dataset for each action
// that needs it). Sources become splits; aggregate_by_key becomes a
// map_values and a reduce_by_key. Lower does no I/O but l.Inputs'.
func (s *Spec) Lower(l Lowering) (*planner.Job, error) {
	lw := &lowering{Lowering: l, spec: s, partitions: cmp.Or(s.Conf.Partitions, l.Slots), cached: map[string]int{}}
	first, err := lw.source(s.Source)
	if err != nil {
		return nil, err
	}
	if _, err := lw.chain(first, s.Steps); err != nil {
		return nil, err
	}
	return &lw.job, nil
}

// Plan lowers the spec and builds its physical plan.
func (s *Spec) Plan(l Lowering) (*planner.Plan, error) {
	job, err := s.Lower(l)
	if err != nil {
		return nil, err
	}
	return planner.Build(*job)
}

// lowering is one Lower call's state.
type lowering struct {
	Lowering
	spec       *Spec
	partitions int
	job        planner.Job
	cached     map[string]int // cached dataset -> the planner dataset that computes it
	nsplits    int            // of every source so far
}

func (lw *lowering) add(d planner.Dataset) int {
	d.ID = len(lw.job.Datasets)
	lw.job.Datasets = append(lw.job.Datasets, d)
	return d.ID
}

func (lw *lowering) source(src Source) (int, error) {
	if src.Kind == "dataset" {
		return lw.named(src.Dataset)
	}
	limit := 0 // what is left of MaxSplits; nsplits below is the exact check
	if lw.MaxSplits > 0 {
		limit = max(lw.MaxSplits-lw.nsplits, 1)
	}
	splits, err := splitInputs(src, int64(lw.spec.Conf.SplitSize), lw.Slots, lw.Inputs, limit)
	if err != nil {
		return 0, fmt.Errorf("%s:%d: source: %w", lw.spec.Display(), src.Line, err)
	}
	if lw.nsplits += len(splits); lw.MaxSplits > 0 && lw.nsplits > lw.MaxSplits {
		return 0, fmt.Errorf("%s:%d: source: the job reads more than %d splits of input (limits.splits): raise source.split_size, or read fewer files", lw.spec.Display(), src.Line, lw.MaxSplits)
	}
	return lw.add(planner.Dataset{Op: planner.OpSource, Splits: splits}), nil
}

func (lw *lowering) named(name string) (int, error) {
	if id, ok := lw.cached[name]; ok {
		return id, nil
	}
	if len(lw.job.Datasets) > maxPlanDatasets {
		// Uncached datasets read by several readers, each of them read
		// by several, multiply.
		return 0, fmt.Errorf("%s: the job computes more than %d datasets, because a dataset that is not cached is computed again for every step or source that reads it: add cache = true to [datasets.%s] (or to the datasets that read it)", lw.spec.Display(), maxPlanDatasets, name)
	}
	c := lw.spec.Datasets[name]
	first, err := lw.source(c.Source)
	if err != nil {
		return 0, err
	}
	last, err := lw.chain(first, c.Steps)
	if err != nil {
		return 0, err
	}
	if c.Cache {
		lw.job.Datasets[last].Cache = true
		lw.cached[name] = last
	}
	return last, nil
}

func (lw *lowering) check(st Step) error {
	if lw.Check == nil {
		return nil
	}
	return lw.Check(st)
}

func (lw *lowering) chain(parent int, steps []Step) (int, error) {
	for _, st := range steps {
		d := planner.Dataset{Op: st.Op, Parents: []int{parent}}
		switch {
		case readsSide(st.Op):
			other, err := lw.named(st.With)
			if err != nil {
				return 0, err
			}
			d.Parents = []int{parent, other}
			if st.Op != planner.OpUnion {
				d.Partitions = lw.partitions
			}
			if st.Op == planner.OpJoin || st.Op == planner.OpLeftOuterJoin {
				t := int64(lw.spec.Conf.BroadcastThreshold)
				d.Broadcast = t > 0 && inputBytes(lw.job.Datasets, other) <= t
			}
		case st.Op == planner.OpSample:
			d.Fraction, d.Seed = st.Fraction, st.Seed
		case st.Op == planner.OpAggregateByKey:
			// map_values with the create function, then reduce_by_key
			// with the merge function (which combines on the map side).
			create := Step{Op: planner.OpMapValues, Module: st.Module, Function: st.Function, Line: st.Line}
			merge := Step{Op: planner.OpReduceByKey, Module: st.MergeModule, Function: st.MergeFunction, Line: st.Line}
			for _, s := range []Step{create, merge} {
				if err := lw.check(s); err != nil {
					return 0, err
				}
			}
			id := lw.add(planner.Dataset{Op: planner.OpMapValues, Parents: d.Parents, Func: planner.FuncRef{Module: create.Module, Function: create.Function}})
			d = planner.Dataset{Op: planner.OpReduceByKey, Parents: []int{id}, Func: planner.FuncRef{Module: merge.Module, Function: merge.Function}, Partitions: lw.partitions}
		case builtin(st.Op):
			d.Partitions = cmp.Or(st.Partitions, lw.partitions)
		default:
			if err := lw.check(st); err != nil {
				return 0, err
			}
			d.Func = planner.FuncRef{Module: st.Module, Function: st.Function}
			if st.Op == planner.OpReduceByKey {
				d.Partitions = lw.partitions
			}
		}
		parent = lw.add(d)
	}
	return parent, nil
}

// inputBytes estimates the size of dataset id by the bytes of the source
// splits it is computed from (Spark estimates a file relation by its
// files' size too); a generated record counts 8 bytes.
func inputBytes(ds []planner.Dataset, id int) int64 {
	seen := map[int]bool{}
	var total int64
	var walk func(id int)
	walk = func(id int) {
		if seen[id] {
			return
		}
		seen[id] = true
		for _, sp := range ds[id].Splits {
			if sp.Generate {
				total += 8 * sp.Length
			} else {
				total += sp.Length
			}
		}
		for _, p := range ds[id].Parents {
			walk(p)
		}
	}
	walk(id)
	return total
}

// splitInputs expands globs into byte-range splits of at most size bytes.
// A size of 0 sizes splits to the grid: the total input over twice the
// slots, so that every slot has work and a straggler costs little, within
// [minAutoSplit, maxAutoSplit]. More than maxSplits splits (0: no bound)
// are refused before they are made.
func splitInputs(src Source, size int64, slots int, in Inputs, maxSplits int) ([]planner.Split, error) {
	if src.Kind == "inline" {
		// As many splits as asked, or twice the slots; one split for no
		// values, so that the job still runs.
		n := cmp.Or(src.Parts, 2*max(slots, 1))
		n = max(min(n, len(src.Inline)), 1)
		splits := make([]planner.Split, n)
		for i := range n {
			splits[i] = planner.Split{Inline: true, Values: src.Inline[i*len(src.Inline)/n : (i+1)*len(src.Inline)/n]}
		}
		return splits, nil
	}
	if src.Kind == "generate" {
		// Twice as many splits as slots, as for files.
		n := int64(2 * max(slots, 1))
		per := max((src.Count+n-1)/n, 1)
		var splits []planner.Split
		for first := int64(0); first < src.Count; first += per {
			splits = append(splits, planner.Split{Generate: true, Offset: first, Length: min(per, src.Count-first)})
		}
		if len(splits) == 0 {
			splits = append(splits, planner.Split{Generate: true})
		}
		return splits, nil
	}
	var files []storage.File
	for _, g := range src.Globs {
		fs, err := in.Glob(g)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	slices.SortFunc(files, func(a, b storage.File) int {
		return cmp.Or(cmp.Compare(a.Volume, b.Volume), cmp.Compare(a.Path, b.Path))
	})
	files = slices.CompactFunc(files, func(a, b storage.File) bool { return a.Volume == b.Volume && a.Path == b.Path })
	var total int64
	for _, f := range files {
		total += f.Size
	}
	if size <= 0 {
		size = min(max(total/int64(2*max(slots, 1)), minAutoSplit), maxAutoSplit)
	}
	rec := int64(src.RecordSize)
	if rec > 0 {
		// Splits hold whole records.
		size = max(size/rec, 1) * rec
	}
	if maxSplits > 0 {
		var n int64
		for _, f := range files {
			n += (f.Size + size - 1) / size
		}
		if n > int64(maxSplits) {
			return nil, fmt.Errorf("%d bytes of input in splits of %d bytes (source.split_size) are more than %d splits (limits.splits): raise source.split_size, or read fewer files", total, size, maxSplits)
		}
	}
	var splits []planner.Split
	for _, f := range files {
		if rec > 0 && f.Size%rec != 0 {
			return nil, fmt.Errorf("%s:%s is %d bytes, not a whole number of %d-byte records (source.record_size): it ends with %d bytes of a partial record", f.Volume, f.Path, f.Size, rec, f.Size%rec)
		}
		for off := int64(0); off < f.Size; off += size {
			splits = append(splits, planner.Split{Volume: f.Volume, Path: f.Path, Offset: off, Length: min(size, f.Size-off), RecordSize: src.RecordSize, KeySize: src.KeySize, SkipFirstLine: off == 0 && src.Header, JSON: src.Kind == "json"})
		}
	}
	if len(splits) == 0 {
		// Only empty files: one task reads nothing, so the job still runs
		// its stages and writes an empty result.
		splits = append(splits, planner.Split{Volume: files[0].Volume, Path: files[0].Path, RecordSize: src.RecordSize, KeySize: src.KeySize})
	}
	return splits, nil
}
