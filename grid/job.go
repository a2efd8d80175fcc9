package grid

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/wasmgrid/wasmgrid/internal/executor"
	"github.com/wasmgrid/wasmgrid/internal/jobspec"
	"github.com/wasmgrid/wasmgrid/internal/storage"
	"github.com/wasmgrid/wasmgrid/planner"
	"github.com/wasmgrid/wasmgrid/wasmexec"
)

const (
	minAutoSplit = 1 << 20
	maxAutoSplit = 64 << 20
)

// JobRequest is a job to run on an embedded grid: a validated spec and
// the bytes of its modules, which Submit writes to the grid's module
// directory before anything else reads them.
type JobRequest struct {
	Spec    *jobspec.Spec
	Modules map[string][]byte // by the spec's module name
	// Tenant owns the job and shares the cluster under its weight and
	// quota; empty means "default".
	Tenant string
}

// admission is a job on its way in: its spec, its tenant and its modules,
// which travel by hash and file, never as bytes.
type admission struct {
	Spec    *jobspec.Spec
	Modules map[string]moduleBlob // by the spec's module name
	Tenant  string
	// limits bound the spec, checked before anything is planned.
	limits LimitsConfig
	// Grants are the volumes the job may read and write; nil until admit
	// sets the grid's for the tenant.
	Grants *storage.Grants
}

func (r *admission) tenant() string {
	if r.Tenant == "" {
		return "default"
	}
	return r.Tenant
}

// grants are the job's volumes (none before admit sets them).
func (r *admission) grants() storage.Grants {
	if r.Grants == nil {
		return storage.Grants{Tenant: r.tenant()}
	}
	return *r.Grants
}

// stepKinds says which guest function kind each operator needs.
var stepKinds = map[jobspec.Op]string{
	jobspec.OpMap:           "map",
	jobspec.OpFlatMap:       "flat_map",
	jobspec.OpFilter:        "filter",
	jobspec.OpMapValues:     "map",
	jobspec.OpKeyBy:         "map",
	jobspec.OpMapPartitions: "flat_map",
	jobspec.OpReduceByKey:   "reduce",
}

// prepare checks a request against its modules' manifests and the input
// files and builds the plan: everything that can fail before a task runs.
func prepare(ctx context.Context, insp *inspector, req admission, defaultPartitions int, st *storage.Cache) (planner.Job, map[string]moduleBlob, map[string]storage.Volume, error) {
	spec := req.Spec
	if err := checkSpecLimits(spec, req.limits); err != nil {
		return planner.Job{}, nil, nil, err
	}
	blobs := map[string]moduleBlob{}
	mods := map[string]*executor.ModuleInfo{}
	for _, m := range spec.Modules {
		blob, ok := req.Modules[m.Name]
		if !ok {
			return planner.Job{}, nil, nil, fmt.Errorf("%s:%d: module %s has no bytes", spec.File, m.Line, m.Name)
		}
		blob.Name = m.Name
		info, err := insp.describe(ctx, blob, uint64(spec.Conf.TaskMemory))
		if err != nil {
			return planner.Job{}, nil, nil, fmt.Errorf("%s:%d: modules.%s: %w", spec.Display(), m.Line, m.Name, err)
		}
		mods[m.Name] = info
		blobs[m.Name] = blob
	}
	check := func(st jobspec.Step) error {
		mod := mods[st.Module]
		if mod == nil {
			return fmt.Errorf("%s:%d: step %s names module %q, which the spec does not define", spec.Display(), st.Line, st.Op, st.Module)
		}
		fn, err := wasmexec.FindFunction(mod.Functions, st.Function)
		if err != nil {
			return fmt.Errorf("%s:%d: %s = \"%s.%s\": module %s: %v", spec.Display(), st.Line, st.Op, st.Module, st.Function, st.Module, err)
		}
		if want := stepKinds[st.Op]; fn.Kind != want {
			return fmt.Errorf("%s:%d: %s = \"%s.%s\": %s is a %s function; %s needs a %s function", spec.Display(), st.Line, st.Op, st.Module, st.Function, st.Function, fn.Kind, st.Op, want)
		}
		return nil
	}
	in := &inputs{ctx: ctx, grants: req.grants(), stores: st, used: map[string]storage.Volume{}}
	job, err := lowerSpec(spec, defaultPartitions, check, in, req.limits.Splits)
	if err != nil {
		return planner.Job{}, nil, nil, err
	}
	if _, err := planner.Build(job); err != nil {
		return planner.Job{}, nil, nil, err
	}
	return job, blobs, in.used, nil
}

// inputs finds a job's input files in its tenant's volumes.
type inputs struct {
	ctx    context.Context
	grants storage.Grants
	stores *storage.Cache
	used   map[string]storage.Volume // the volumes the splits read
}

// file is an input file: a volume's object.
type file struct {
	volume string
	storage.Object
}

// glob lists the files a source pattern names, in the tenant's volumes.
func (in *inputs) glob(loc string) ([]file, error) {
	ref, err := storage.Resolve(loc, in.grants, storage.Read)
	if err != nil {
		return nil, err
	}
	v := in.grants.ByName[ref.Volume].Volume
	st, err := in.stores.Store(v)
	if err != nil {
		return nil, err
	}
	objs, err := st.Glob(in.ctx, ref.Path)
	if err != nil {
		return nil, err
	}
	if len(objs) == 0 {
		return nil, fmt.Errorf("no file matches %q (in volume %s: %s)", loc, ref.Volume, locate(v, ref.Path))
	}
	in.used[v.Name] = v
	out := make([]file, len(objs))
	for i, o := range objs {
		out[i] = file{v.Name, o}
	}
	return out, nil
}

// planSpec turns a spec into a physical plan: its main chain, and the
// chain of each named dataset where a step or a source reads it (once for
// a cached dataset, at every read otherwise, as Spark recomputes an
// uncached dataset for each action that needs it). check, if set, vets
// each step with a guest function; in finds its input files; maxSplits,
// if not 0, bounds the splits of all sources together.
func planSpec(spec *jobspec.Spec, slots int, check func(jobspec.Step) error, in *inputs, maxSplits int) (*planner.Plan, error) {
	job, err := lowerSpec(spec, slots, check, in, maxSplits)
	if err != nil {
		return nil, err
	}
	return planner.Build(job)
}

// lowerSpec turns a spec into the planner's logical DAG with its splits,
// as planSpec does before it builds the plan.
func lowerSpec(spec *jobspec.Spec, slots int, check func(jobspec.Step) error, in *inputs, maxSplits int) (planner.Job, error) {
	partitions := cmp.Or(spec.Conf.Partitions, slots)
	var job planner.Job
	cached := map[string]int{} // cached dataset -> the planner dataset that computes it
	nsplits := 0               // of every source so far
	var chain func(parent int, steps []jobspec.Step) (int, error)
	var named func(name string) (int, error)
	source := func(src jobspec.Source) (int, error) {
		if src.Kind == "dataset" {
			return named(src.Dataset)
		}
		limit := 0 // what is left of maxSplits; nsplits below is the exact check
		if maxSplits > 0 {
			limit = max(maxSplits-nsplits, 1)
		}
		splits, err := splitInputs(src, int64(spec.Conf.SplitSize), slots, in, limit)
		if err != nil {
			return 0, fmt.Errorf("%s:%d: source: %w", spec.Display(), src.Line, err)
		}
		if nsplits += len(splits); maxSplits > 0 && nsplits > maxSplits {
			return 0, fmt.Errorf("%s:%d: source: the job reads more than %d splits of input (limits.splits): raise source.split_size, or read fewer files", spec.Display(), src.Line, maxSplits)
		}
		id := len(job.Datasets)
		job.Datasets = append(job.Datasets, planner.Dataset{ID: id, Op: planner.OpSource, Splits: splits})
		return id, nil
	}
	named = func(name string) (int, error) {
		if id, ok := cached[name]; ok {
			return id, nil
		}
		if len(job.Datasets) > maxPlanDatasets {
			// Uncached datasets read by several readers, each of them read
			// by several, multiply.
			return 0, fmt.Errorf("%s: the job computes more than %d datasets, because a dataset that is not cached is computed again for every step or source that reads it: add cache = true to [datasets.%s] (or to the datasets that read it)", spec.Display(), maxPlanDatasets, name)
		}
		c := spec.Datasets[name]
		first, err := source(c.Source)
		if err != nil {
			return 0, err
		}
		last, err := chain(first, c.Steps)
		if err != nil {
			return 0, err
		}
		if c.Cache {
			job.Datasets[last].Cache = true
			cached[name] = last
		}
		return last, nil
	}
	chain = func(parent int, steps []jobspec.Step) (int, error) {
		for _, st := range steps {
			d := planner.Dataset{Op: planner.Op(st.Op), Parents: []int{parent}}
			switch {
			case st.Op.Side():
				other, err := named(st.With)
				if err != nil {
					return 0, err
				}
				d.Parents = []int{parent, other}
				if st.Op != jobspec.OpUnion {
					d.Partitions = partitions
				}
				if st.Op == jobspec.OpJoin || st.Op == jobspec.OpLeftOuterJoin {
					t := int64(spec.Conf.BroadcastThreshold)
					d.Broadcast = t > 0 && inputBytes(job.Datasets, other) <= t
				}
			case st.Op == jobspec.OpSample:
				d.Fraction, d.Seed = st.Fraction, st.Seed
			case st.Op == jobspec.OpAggregateByKey:
				// map_values with the create function, then reduce_by_key
				// with the merge function (which combines on the map side).
				create := jobspec.Step{Op: jobspec.OpMapValues, Module: st.Module, Function: st.Function, Line: st.Line}
				merge := jobspec.Step{Op: jobspec.OpReduceByKey, Module: st.MergeModule, Function: st.MergeFunction, Line: st.Line}
				if check != nil {
					for _, s := range []jobspec.Step{create, merge} {
						if err := check(s); err != nil {
							return 0, err
						}
					}
				}
				d.ID = len(job.Datasets)
				d.Op, d.Func = planner.OpMapValues, planner.FuncRef{Module: create.Module, Function: create.Function}
				job.Datasets = append(job.Datasets, d)
				d = planner.Dataset{Op: planner.OpReduceByKey, Parents: []int{d.ID}, Func: planner.FuncRef{Module: merge.Module, Function: merge.Function}, Partitions: partitions}
			case st.Op.Builtin():
				d.Partitions = cmp.Or(st.Partitions, partitions)
			default:
				if check != nil {
					if err := check(st); err != nil {
						return 0, err
					}
				}
				d.Func = planner.FuncRef{Module: st.Module, Function: st.Function}
				if st.Op == jobspec.OpReduceByKey {
					d.Partitions = partitions
				}
			}
			d.ID = len(job.Datasets)
			job.Datasets = append(job.Datasets, d)
			parent = d.ID
		}
		return parent, nil
	}
	first, err := source(spec.Source)
	if err != nil {
		return planner.Job{}, err
	}
	if _, err := chain(first, spec.Steps); err != nil {
		return planner.Job{}, err
	}
	return job, nil
}

// maxPlanDatasets bounds the datasets a spec expands to: a plan that
// large is a spec that recomputes uncached datasets many times over.
const maxPlanDatasets = 10000

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
func splitInputs(src jobspec.Source, size int64, slots int, in *inputs, maxSplits int) ([]planner.Split, error) {
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
	var files []file
	for _, g := range src.Globs {
		fs, err := in.glob(g)
		if err != nil {
			return nil, err
		}
		files = append(files, fs...)
	}
	slices.SortFunc(files, func(a, b file) int { return cmp.Or(cmp.Compare(a.volume, b.volume), cmp.Compare(a.Path, b.Path)) })
	files = slices.CompactFunc(files, func(a, b file) bool { return a.volume == b.volume && a.Path == b.Path })
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
			return nil, fmt.Errorf("%s:%s is %d bytes, not a whole number of %d-byte records (source.record_size): it ends with %d bytes of a partial record", f.volume, f.Path, f.Size, rec, f.Size%rec)
		}
		for off := int64(0); off < f.Size; off += size {
			splits = append(splits, planner.Split{Volume: f.volume, Path: f.Path, Offset: off, Length: min(size, f.Size-off), RecordSize: src.RecordSize, KeySize: src.KeySize, SkipFirstLine: off == 0 && src.Header, JSON: src.Kind == "json"})
		}
	}
	if len(splits) == 0 {
		// Only empty files: one task reads nothing, so the job still runs
		// its stages and writes an empty result.
		splits = append(splits, planner.Split{Volume: files[0].volume, Path: files[0].Path, RecordSize: src.RecordSize, KeySize: src.KeySize})
	}
	return splits, nil
}

// Explain plans a spec as a grid of slots task slots would, without
// reading its modules, and renders the plan (grid run --explain).
func Explain(spec *jobspec.Spec, slots int) (string, error) {
	st := &storage.Cache{}
	defer st.Close()
	in := &inputs{ctx: context.Background(), grants: localGrants("default"), stores: st, used: map[string]storage.Volume{}}
	plan, err := planSpec(spec, slots, nil, in, 0)
	if err != nil {
		return "", err
	}
	return plan.String(), nil
}
