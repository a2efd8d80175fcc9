package planner

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Op is a dataset operator.
type Op string

// The operators of the dataset API.
const (
	OpSource      Op = "source"
	OpMap         Op = "map"
	OpFlatMap     Op = "flat_map"
	OpFilter      Op = "filter"
	OpReduceByKey Op = "reduce_by_key"
	// OpSortByKey sorts by key across partitions: a range partitioner
	// whose bounds come from a sample of the keys, so that partitions are
	// balanced and reading them in order reads every key in order.
	OpSortByKey Op = "sort_by_key"
	// OpGroupByKey gathers each key's values into one record whose value
	// encodes the list (docs/abi.md, "Grouped values").
	OpGroupByKey Op = "group_by_key"
	// OpDistinct keeps one of each distinct (key, value) record.
	OpDistinct Op = "distinct"
	// OpCountByKey counts the records of each key: (key, count in decimal).
	OpCountByKey Op = "count_by_key"
	// OpCoalesce lowers the partitions of a stage that reads a shuffle,
	// without another shuffle: each task reads a run of consecutive
	// shuffle partitions (in order, so a sorted dataset stays sorted).
	OpCoalesce Op = "coalesce"
	// OpJoin and OpLeftOuterJoin join two datasets by key (Parents: the
	// left one, then the right one): both are shuffled to the same hash
	// partitions and merged; each output record's value lists the left
	// and the right value (grouped-values encoding, docs/abi.md), only the
	// left one for a left key without a match in a left outer join.
	OpJoin          Op = "join"
	OpLeftOuterJoin Op = "left_outer_join"
	// OpRepartition spreads records evenly over new partitions (round
	// robin, whatever their keys); OpPartitionBy hashes them by key.
	// Neither changes a record.
	OpRepartition Op = "repartition"
	OpPartitionBy Op = "partition_by"
	// OpUnion is the records of its two parents, unchanged: their stages
	// run side by side, the steps after the union run in both, and both
	// write the same shuffle (or the result).
	OpUnion Op = "union"
	// OpMapValues applies a map function and keeps each record's key: the
	// record takes the value the function returns. Hash partitioning by
	// key survives it.
	OpMapValues Op = "map_values"
	// OpKeyBy applies a map function and keeps each record's value: the
	// record takes the key the function returns.
	OpKeyBy Op = "key_by"
	// OpCogroup groups two datasets by key (Parents: left, right): one
	// record per key of either, whose value lists two lists, the left
	// values and the right values (grouped-values encoding, nested).
	OpCogroup Op = "cogroup"
	// OpSample keeps each record with probability Fraction (Bernoulli
	// sampling, Spark's sample without replacement), the same records on
	// every run with the same Seed. The host does it.
	OpSample Op = "sample"
	// OpMapPartitions calls a flat_map function once per partition, with
	// one record whose value is the whole partition as a batch
	// (docs/abi.md); the host gathers it.
	OpMapPartitions Op = "map_partitions"
	// OpAggregateByKey folds each key's values into an accumulator with a
	// create function (a map function whose key is kept) and a merge
	// function (a reduce function, combined on the map side). It is an
	// operator of job specs: jobspec lowers it to an OpMapValues followed
	// by an OpReduceByKey, and Build refuses it.
	OpAggregateByKey Op = "aggregate_by_key"
)

// Narrow reports whether op computes a partition from one partition of its
// parent, so that it can be fused into its parent's pipeline.
func (op Op) Narrow() bool {
	return op == OpMap || op == OpFlatMap || op == OpFilter || op == OpMapValues || op == OpKeyBy || op == OpSample || op == OpMapPartitions
}

// KeepsKeys reports whether op never changes a record's key, so that a
// dataset partitioned by key stays so.
func (op Op) KeepsKeys() bool {
	return op == OpFilter || op == OpMapValues || op == OpJoin || op == OpLeftOuterJoin || op == OpSample
}

// FuncRef names a guest function of a module of the job.
type FuncRef struct {
	Module   string
	Function string
}

func (f FuncRef) String() string { return f.Module + "." + f.Function }

// Dataset is a node of the logical DAG.
type Dataset struct {
	ID      int
	Op      Op
	Parents []int   // datasets this one is computed from; none for a source
	Func    FuncRef // the guest function, for every op but source
	// Partitions is the number of output partitions of a shuffle operator.
	Partitions int
	// Splits of a source dataset; the first source may leave them to
	// Job.Splits.
	Splits []Split
	// Cache computes the dataset once and keeps its partitions on the
	// agents for every dataset that reads it (Spark's cache()); a dataset
	// that is not cached feeds exactly one other.
	Cache bool
	// Broadcast, for a join, sends the whole right side (a small one) to
	// every task of the left side, which joins it where it runs: the left
	// side is not shuffled (Spark's broadcast hash join).
	Broadcast bool
	// Fraction and Seed of a sample.
	Fraction float64
	Seed     uint64
}

// Split is a piece of a source for one task: a byte range of a file.
type Split struct {
	// Volume and Path name the file: a path relative to the root of a
	// storage volume that the job's tenant may read.
	Volume string `json:",omitempty"`
	Path   string
	Offset int64
	Length int64
	// JSON makes each line a JSON value that must be valid (JSON lines).
	JSON bool
	// SkipFirstLine drops the first line of a text split that starts at
	// the beginning of its file: a CSV header.
	SkipFirstLine bool
	// Generate makes the split synthetic: records Offset..Offset+Length-1,
	// each with an empty key and its number in decimal as the value; Path
	// is unused.
	Generate bool
	// Inline makes the split's records the Values (an inline source: rows
	// that travel with the job), each with an empty key; Path is unused.
	Inline bool
	Values []string `json:",omitempty"`
	// RecordSize, if not zero, makes the file one of fixed-length binary
	// records (Offset and Length are whole records), each keyed by its
	// first KeySize bytes; otherwise it is text, one record per line.
	RecordSize, KeySize int
}

// Job is a logical DAG. Datasets are in topological order (parents before
// children), IDs are their indexes, and the last one is the result.
type Job struct {
	Datasets []Dataset
	// Splits of the source dataset, one map task each.
	Splits []Split
}

// Step is one fused narrow operator of a stage's pipeline: a guest
// function, or a hash join (Op join or left_outer_join) with the stage's
// Broadcasts[Broadcast], which the host does.
type Step struct {
	Op        Op
	Func      FuncRef
	Broadcast int
	// Fraction and Seed of a sample step.
	Fraction float64
	Seed     uint64
}

// Host reports whether the host runs the step (a broadcast join, a
// sample, or the gathering of a partition for map_partitions) rather than
// a chain of guest functions.
func (s Step) Host() bool {
	return s.Op == OpJoin || s.Op == OpLeftOuterJoin || s.Op == OpSample || s.Op == OpMapPartitions
}

// ShuffleDep is a shuffle between two stages.
type ShuffleDep struct {
	ID         int
	Partitions int
	// Combine, if set, folds equal keys on the map side (and is the reduce
	// function on the reduce side).
	Combine *FuncRef
	// Range partitions by key ranges instead of hashes, with bounds the
	// scheduler computes from a sample stage (TaskSpec.Bounds).
	Range bool
	// Maps is how many map outputs the shuffle has, when more than one
	// stage writes it (a union): each writer's outputs start at its
	// Stage.MapOffset. Zero means the writer's partitions.
	Maps int
	// Builtin is a shuffle the host transforms itself, with no guest
	// function: "group" (the reduce side gathers each key's values),
	// "distinct" (records are keyed by their whole content, combined on
	// the map side, deduplicated on the reduce side and decoded back) or
	// "count" (values become decimal counts, summed on both sides),
	// "round_robin" (records spread evenly, unchanged), "by_key" (hash
	// partitioned by key, unchanged), "cache" (map task i writes all its
	// records, unchanged, to partition i: a cached dataset, which each
	// reader's task i reads from map output i alone) or "broadcast" (one
	// partition, which every task of the reading stage reads whole).
	Builtin string
	// KeyPartitioned, for a "cache" shuffle, says that partition i holds
	// exactly the keys a hash shuffle to Partitions sends to i, so that a
	// join with as many partitions reads it as it is (no shuffle).
	KeyPartitioned bool
}

// Identity reports whether map output i holds only partition i (a cache).
func (d *ShuffleDep) Identity() bool { return d.Builtin == "cache" }

// JoinSpec is the right side of a join stage.
type JoinSpec struct {
	Right   *ShuffleDep
	Outer   bool // left outer: left keys without a match are kept
	Cogroup bool // one record per key of either side, with both lists
}

// SampleSpec makes a stage a sample stage: it runs the pipeline of the
// stage it samples for and returns up to Keys of its output's keys, from
// which the scheduler computes the range bounds of shuffle Shuffle.
type SampleSpec struct {
	Shuffle int
	Keys    int
}

// Stage is a set of tasks, one per partition, that run the same pipeline.
type Stage struct {
	ID      int
	Parents []int // stages whose shuffle output this stage reads
	// Input: exactly one of Splits (a source stage) and ShuffleIn.
	Splits    []Split
	ShuffleIn *ShuffleDep
	// Reduce folds the shuffle input by key before Steps run.
	Reduce *FuncRef
	Steps  []Step
	// ShuffleOut is the map output of a shuffle map stage; nil for the
	// result stage and sample stages.
	ShuffleOut *ShuffleDep
	// Sample, if set, makes this a sample stage (see SampleSpec).
	Sample *SampleSpec
	// Join, if set, makes the stage read a second shuffle and join it with
	// ShuffleIn by key.
	Join       *JoinSpec
	Partitions int
	// After lists stages that must finish before this one starts without
	// it reading their output: the sample stage of a range shuffle.
	After []int
	// MapOffset is the index of this stage's first map output in its
	// shuffle, which a union shares with another stage.
	MapOffset int
	// Broadcasts are the right sides of the joins among the stage's steps
	// (Step.Broadcast indexes them): broadcasts, which each task reads
	// whole, and caches partitioned as the stage, of which task i reads
	// the partitions of its own keys.
	Broadcasts []*ShuffleDep

	members []*Stage // while planning: the open stages of a union
}

// all is the stage itself, or the members of a union being planned.
func (s *Stage) all() []*Stage {
	if s.members != nil {
		return s.members
	}
	return []*Stage{s}
}

// InputPartitions are the shuffle partitions task p of a stage that reads
// a shuffle merges: p alone, or a run of consecutive ones after coalesce.
func (s *Stage) InputPartitions(p int) []int {
	if s.ShuffleIn == nil {
		return nil
	}
	in, out := s.ShuffleIn.Partitions, s.Partitions
	var ps []int
	for q := p * in / out; q < (p+1)*in/out; q++ {
		ps = append(ps, q)
	}
	return ps
}

// IsResult reports whether the stage produces the job's result.
func (s *Stage) IsResult() bool { return s.ShuffleOut == nil && s.Sample == nil }

// Sampling bounds for range shuffles: at most maxSampleTasks tasks of a
// source stage sample it (spread over its splits), and all of them
// together return about sampleKeysPerPartition keys per output partition
// (Spark's RangePartitioner takes 20, oversampled 3 times).
const (
	maxSampleTasks         = 16
	sampleKeysPerPartition = 60
)

// Plan is the physical plan of a job. It is immutable once built; the
// progress of a run lives in a Scheduler.
type Plan struct {
	Stages []*Stage // in dependency order; the last is the result stage
}

// Result is the result stage.
func (p *Plan) Result() *Stage { return p.Stages[len(p.Stages)-1] }

// Build cuts a job into stages at its shuffle dependencies. Datasets are
// in topological order; each is consumed by exactly one other unless it is
// cached, and the last is the result. A cached dataset ends its stage with
// a cache that each reader reads narrowly; a join reads a cache that is
// hash partitioned by key into its partitions as it is, and joins it in a
// step of the other side's stage when that side is partitioned the same
// way. A join with a small right side (Dataset.Broadcast) is a step too.
func Build(job Job) (*Plan, error) {
	if len(job.Datasets) == 0 {
		return nil, errors.New("planner: job has no datasets")
	}
	if job.Datasets[0].Op != OpSource {
		return nil, errors.New("planner: the first dataset must be a source")
	}
	p := &Plan{}
	open := map[int]*Stage{}        // dataset -> the open stage that computes it
	cached := map[int]*ShuffleDep{} // cached dataset -> its cache
	readers := map[int]int{}        // cached dataset -> how many datasets read it
	// closeStage gives a finished stage its ID and appends it.
	closeStage := func(st *Stage) {
		st.ID = len(p.Stages)
		p.Stages = append(p.Stages, st)
	}
	// shuffleOut closes st with a shuffle to partitions and returns the
	// dependency.
	shuffleOut := func(st *Stage, dep *ShuffleDep) *ShuffleDep {
		closeStage(st)
		dep.ID = st.ID
		st.ShuffleOut = dep
		return dep
	}
	// shuffleOutAll closes st, or every member of a union, with one
	// shuffle that they all write.
	shuffleOutAll := func(st *Stage, dep *ShuffleDep) *ShuffleDep {
		if st.members == nil {
			return shuffleOut(st, dep)
		}
		for i, m := range st.members {
			closeStage(m)
			if i == 0 {
				dep.ID = m.ID
			}
			m.ShuffleOut, m.MapOffset = dep, dep.Maps
			dep.Maps += m.Partitions
		}
		return dep
	}
	// parentsOf are the stages that write dep.
	parentsOf := func(dep *ShuffleDep) []int {
		var ids []int
		for _, st := range p.Stages {
			if st.ShuffleOut == dep {
				ids = append(ids, st.ID)
			}
		}
		return ids
	}
	// take returns the open stage that computes parent, for dataset i to
	// extend: the parent's own, which no other dataset may then take, or
	// for a cached parent a new stage that reads the cache.
	take := func(i, parent int) (*Stage, error) {
		if parent < 0 || parent >= i {
			return nil, fmt.Errorf("planner: dataset %d: parent %d is not an earlier dataset", i, parent)
		}
		if dep, ok := cached[parent]; ok {
			readers[parent]++
			return &Stage{Parents: parentsOf(dep), ShuffleIn: dep, Partitions: dep.Partitions}, nil
		}
		st, ok := open[parent]
		if !ok {
			return nil, fmt.Errorf("planner: dataset %d reads dataset %d, which another dataset reads already: a dataset that feeds several others must be cached", i, parent)
		}
		delete(open, parent)
		return st, nil
	}
	// keep makes cur the open stage of dataset d, or closes it into d's
	// cache: each task writes its partition unchanged, and each reader
	// reads it narrowly.
	keep := func(d Dataset, cur *Stage) {
		if !d.Cache {
			open[d.ID] = cur
			return
		}
		n := cur.Partitions
		if cur.members != nil {
			n = 0
			for _, m := range cur.members {
				n += m.Partitions
			}
		}
		cached[d.ID] = shuffleOutAll(cur, &ShuffleDep{Partitions: n, Builtin: "cache", KeyPartitioned: keyPartitioned(cur)})
	}
	// joinSide returns the shuffle a join with partitions partitions
	// reads one side from: a cache that is partitioned as the join needs
	// as it is, or a new hash shuffle that closes st.
	joinSide := func(st *Stage, partitions int) (*ShuffleDep, []int) {
		if inPlace(st, partitions) {
			return st.ShuffleIn, st.Parents
		}
		dep := shuffleOutAll(st, &ShuffleDep{Partitions: partitions})
		return dep, parentsOf(dep)
	}
	for i, d := range job.Datasets {
		if d.ID != i {
			return nil, fmt.Errorf("planner: dataset %d has ID %d", i, d.ID)
		}
		if d.Op == OpSource {
			splits := d.Splits
			if i == 0 && splits == nil {
				splits = job.Splits
			}
			if len(splits) == 0 {
				return nil, fmt.Errorf("planner: source dataset %d has no splits (no input)", i)
			}
			keep(d, &Stage{Splits: splits, Partitions: len(splits)})
			continue
		}
		want := 1
		if d.Op == OpJoin || d.Op == OpLeftOuterJoin || d.Op == OpUnion || d.Op == OpCogroup {
			want = 2
		}
		if len(d.Parents) != want {
			return nil, fmt.Errorf("planner: dataset %d: %s takes %d parent(s), not %d", i, d.Op, want, len(d.Parents))
		}
		cur, err := take(i, d.Parents[0])
		if err != nil {
			return nil, err
		}
		needPartitions := func() error {
			if d.Partitions < 1 {
				return fmt.Errorf("planner: dataset %d: %s needs at least one partition", i, d.Op)
			}
			return nil
		}
		if cur.members != nil {
			switch {
			case d.Op.Narrow(), d.Op == OpUnion, d.Op == OpJoin, d.Op == OpLeftOuterJoin, d.Op == OpReduceByKey, d.Op == OpGroupByKey, d.Op == OpDistinct,
				d.Op == OpCountByKey, d.Op == OpRepartition, d.Op == OpPartitionBy:
			default:
				return nil, fmt.Errorf("planner: dataset %d: %s right after a union is not supported yet: put a partition_by or repartition between them", i, d.Op)
			}
		}
		switch {
		case d.Op == OpUnion:
			other, err := take(i, d.Parents[1])
			if err != nil {
				return nil, err
			}
			u := &Stage{}
			for _, st := range []*Stage{cur, other} {
				if st.members != nil {
					u.members = append(u.members, st.members...)
				} else {
					u.members = append(u.members, st)
				}
			}
			cur = u
		case d.Op.Narrow():
			for _, m := range cur.all() {
				m.Steps = append(m.Steps, Step{Op: d.Op, Func: d.Func, Fraction: d.Fraction, Seed: d.Seed})
			}
		case d.Op == OpCoalesce:
			if cur.ShuffleIn == nil {
				return nil, fmt.Errorf("planner: dataset %d: coalesce follows a shuffle (reduce_by_key, sort_by_key, ...); a source's partitions are its splits (raise source.split_size)", i)
			}
			if err := needPartitions(); err != nil {
				return nil, err
			}
			// Fewer partitions only; more would need a shuffle.
			cur.Partitions = min(cur.Partitions, d.Partitions)
		case d.Op == OpSortByKey:
			if err := needPartitions(); err != nil {
				return nil, err
			}
			// The stage so far runs twice: first as a sample stage, whose
			// keys give the range bounds, then as the map stage.
			sample := &Stage{Parents: cur.Parents, ShuffleIn: cur.ShuffleIn, Join: cur.Join, Reduce: cur.Reduce, Steps: slices.Clone(cur.Steps), Broadcasts: cur.Broadcasts, Partitions: cur.Partitions}
			if cur.Splits != nil {
				sample.Splits = spread(cur.Splits, maxSampleTasks)
				sample.Partitions = len(sample.Splits)
			}
			closeStage(sample)
			cur.After = []int{sample.ID}
			dep := shuffleOut(cur, &ShuffleDep{Partitions: d.Partitions, Range: true})
			sample.Sample = &SampleSpec{Shuffle: dep.ID, Keys: min(10000, max(10, (sampleKeysPerPartition*d.Partitions+sample.Partitions-1)/sample.Partitions))}
			cur = &Stage{Parents: []int{cur.ID}, ShuffleIn: dep, Partitions: d.Partitions}
		case d.Op == OpGroupByKey || d.Op == OpDistinct || d.Op == OpCountByKey || d.Op == OpRepartition || d.Op == OpPartitionBy:
			if err := needPartitions(); err != nil {
				return nil, err
			}
			builtin := map[Op]string{OpGroupByKey: "group", OpDistinct: "distinct", OpCountByKey: "count", OpRepartition: "round_robin", OpPartitionBy: "by_key"}[d.Op]
			dep := shuffleOutAll(cur, &ShuffleDep{Partitions: d.Partitions, Builtin: builtin})
			cur = &Stage{Parents: parentsOf(dep), ShuffleIn: dep, Partitions: d.Partitions}
		case d.Op == OpReduceByKey:
			if err := needPartitions(); err != nil {
				return nil, err
			}
			fn := d.Func
			dep := shuffleOutAll(cur, &ShuffleDep{Partitions: d.Partitions, Combine: &fn})
			cur = &Stage{Parents: parentsOf(dep), ShuffleIn: dep, Reduce: &fn, Partitions: d.Partitions}
		case d.Op == OpJoin || d.Op == OpLeftOuterJoin || d.Op == OpCogroup:
			if err := needPartitions(); err != nil {
				return nil, err
			}
			right, err := take(i, d.Parents[1])
			if err != nil {
				return nil, err
			}
			// hashJoin makes the join a step of the left side's stage(s),
			// which read dep whole or, for a cache, their partitions of it.
			hashJoin := func(dep *ShuffleDep, parents []int) {
				for _, m := range cur.all() {
					m.Steps = append(m.Steps, Step{Op: d.Op, Broadcast: len(m.Broadcasts)})
					m.Broadcasts = append(m.Broadcasts, dep)
					for _, id := range parents {
						if !slices.Contains(m.Parents, id) {
							m.Parents = append(m.Parents, id)
						}
					}
				}
			}
			hashed := true
			switch {
			case d.Op == OpCogroup:
				hashed = false
			case inPlace(right, d.Partitions) && keyPartitioned(cur) && cur.Partitions == d.Partitions:
				// Both sides are partitioned by key as the join needs, and
				// the right one is a cache: task i joins its records with
				// partition i of the cache, with no shuffle at all (Spark's
				// join of co-partitioned datasets).
				hashJoin(right.ShuffleIn, right.Parents)
			case d.Broadcast && !inPlace(right, d.Partitions):
				// A cache partitioned as the join needs is read in place
				// instead: it costs nothing, where a broadcast sends it
				// whole to every task.
				dep := shuffleOutAll(right, &ShuffleDep{Partitions: 1, Builtin: "broadcast"})
				hashJoin(dep, parentsOf(dep))
			default:
				hashed = false
			}
			if hashed {
				break
			}
			if cur.members != nil {
				return nil, fmt.Errorf("planner: dataset %d: %s right after a union is not supported yet: put a partition_by or repartition between them", i, d.Op)
			}
			left, parents := joinSide(cur, d.Partitions)
			rdep, rparents := joinSide(right, d.Partitions)
			cur = &Stage{Parents: append(parents, rparents...), ShuffleIn: left, Join: &JoinSpec{Right: rdep, Outer: d.Op == OpLeftOuterJoin, Cogroup: d.Op == OpCogroup}, Partitions: d.Partitions}
		default:
			return nil, fmt.Errorf("planner: dataset %d: unknown operator %q", i, d.Op)
		}
		keep(d, cur)
	}
	last := len(job.Datasets) - 1
	res := open[last]
	delete(open, last)
	if _, ok := cached[last]; ok {
		res, _ = take(last+1, last)
	}
	var unused []int
	for id := range open {
		unused = append(unused, id)
	}
	for id := range cached {
		if readers[id] == 0 {
			unused = append(unused, id)
		}
	}
	if len(unused) > 0 {
		slices.Sort(unused)
		return nil, fmt.Errorf("planner: datasets %v are computed but never used: the last dataset is the result", unused)
	}
	if res.members != nil {
		// The result of a union: its stages write one pass-through
		// shuffle, which the result stage reads, one partition per
		// writer task.
		n := 0
		for _, m := range res.members {
			n += m.Partitions
		}
		dep := shuffleOutAll(res, &ShuffleDep{Partitions: n, Builtin: "round_robin"})
		res = &Stage{Parents: parentsOf(dep), ShuffleIn: dep, Partitions: n}
	}
	closeStage(res)
	return p, nil
}

// inPlace reports whether st only reads a cache that is hash partitioned
// by key into partitions, so that a join with that many partitions reads
// the cache as it is.
func inPlace(st *Stage, partitions int) bool {
	in := st.ShuffleIn
	return in != nil && in.Identity() && in.KeyPartitioned && in.Partitions == partitions &&
		st.Partitions == partitions && st.Reduce == nil && st.Join == nil && len(st.Steps) == 0 && len(st.Broadcasts) == 0
}

// keyPartitioned reports whether stage st's partition i holds exactly the
// keys that a hash shuffle to its partitions sends to i: it reads a hash
// shuffle by key (or a cache that does) without coalescing it, and its
// steps keep keys.
func keyPartitioned(st *Stage) bool {
	in := st.ShuffleIn
	if st.members != nil || in == nil || in.Range || st.Partitions != in.Partitions {
		return false
	}
	switch in.Builtin {
	case "", "group", "count", "by_key":
	case "cache":
		if !in.KeyPartitioned {
			return false
		}
	default: // round robin, distinct (by the whole record)
		return false
	}
	for _, step := range st.Steps {
		if !step.Op.KeepsKeys() {
			return false
		}
	}
	return true
}

// spread picks at most n of splits, evenly spaced.
func spread(splits []Split, n int) []Split {
	if len(splits) <= n {
		return slices.Clone(splits)
	}
	out := make([]Split, n)
	for i := range n {
		out[i] = splits[i*len(splits)/n]
	}
	return out
}

// String renders the plan as a tree, result stage first:
//
//	stage 1 (4 tasks): shuffle 0 → reduce wc.sum → result
//	└─ stage 0 (2 tasks): source (2 splits) → flat_map wc.split → shuffle 0 (4 partitions, combine wc.sum)
func (p *Plan) String() string {
	var b strings.Builder
	seen := map[int]bool{}
	var walk func(s *Stage, prefix, indent string)
	walk = func(s *Stage, prefix, indent string) {
		b.WriteString(prefix)
		if seen[s.ID] {
			// A cache's stage, read again: once in full is enough.
			fmt.Fprintf(&b, "stage %d (above)\n", s.ID)
			return
		}
		seen[s.ID] = true
		b.WriteString(s.describe())
		b.WriteByte('\n')
		deps := append(slices.Clone(s.Parents), s.After...)
		for i, id := range deps {
			branch, next := "├─ ", "│  "
			if i == len(deps)-1 {
				branch, next = "└─ ", "   "
			}
			walk(p.Stages[id], indent+branch, indent+next)
		}
	}
	walk(p.Result(), "", "")
	return b.String()
}

// name is how a plan refers to the shuffle: "shuffle 3" or "cache 3".
func (d *ShuffleDep) name() string {
	switch d.Builtin {
	case "cache":
		return fmt.Sprintf("cache %d", d.ID)
	case "broadcast":
		return fmt.Sprintf("broadcast %d", d.ID)
	}
	return fmt.Sprintf("shuffle %d", d.ID)
}

func (s *Stage) describe() string {
	parts := []string{}
	if s.ShuffleIn != nil && s.Join != nil {
		kind := "join"
		switch {
		case s.Join.Outer:
			kind = "left outer join"
		case s.Join.Cogroup:
			kind = "cogroup"
		}
		parts = append(parts, fmt.Sprintf("%s %s %s", s.ShuffleIn.name(), kind, s.Join.Right.name()))
	} else if s.ShuffleIn != nil {
		parts = append(parts, s.ShuffleIn.name())
	} else {
		parts = append(parts, fmt.Sprintf("source (%s)", plural(len(s.Splits), "split")))
	}
	if s.Reduce != nil {
		parts = append(parts, "reduce "+s.Reduce.String())
	}
	if s.ShuffleIn != nil && s.Partitions < s.ShuffleIn.Partitions {
		parts = append(parts, fmt.Sprintf("coalesce %d → %d", s.ShuffleIn.Partitions, s.Partitions))
	}
	if s.ShuffleIn != nil && s.ShuffleIn.Builtin != "" {
		if what := map[string]string{"group": "group values", "distinct": "distinct", "count": "count"}[s.ShuffleIn.Builtin]; what != "" {
			parts = append(parts, what)
		}
	}
	for _, st := range s.Steps {
		if st.Op == OpSample {
			parts = append(parts, fmt.Sprintf("sample %g (seed %d)", st.Fraction, st.Seed))
			continue
		}
		if st.Op == OpJoin || st.Op == OpLeftOuterJoin {
			parts = append(parts, string(st.Op)+" "+s.Broadcasts[st.Broadcast].name())
			continue
		}
		parts = append(parts, string(st.Op)+" "+st.Func.String())
	}
	switch {
	case s.ShuffleOut != nil && s.ShuffleOut.Builtin == "broadcast":
		parts = append(parts, s.ShuffleOut.name()+" (to every task)")
	case s.ShuffleOut != nil && s.ShuffleOut.Identity():
		out := fmt.Sprintf("cache %d (%d partitions", s.ShuffleOut.ID, s.ShuffleOut.Partitions)
		if s.ShuffleOut.KeyPartitioned {
			out += ", by key"
		}
		parts = append(parts, out+")")
	case s.ShuffleOut != nil:
		out := fmt.Sprintf("shuffle %d (%d partitions", s.ShuffleOut.ID, s.ShuffleOut.Partitions)
		if s.ShuffleOut.Combine != nil {
			out += ", combine " + s.ShuffleOut.Combine.String()
		}
		if s.ShuffleOut.Range {
			out += ", by key range"
		}
		switch b := s.ShuffleOut.Builtin; b {
		case "distinct", "count":
			out += ", combine " + b
		case "round_robin":
			out += ", round robin"
		}
		parts = append(parts, out+")")
	case s.Sample != nil:
		parts = append(parts, fmt.Sprintf("sample %d keys for the bounds of shuffle %d", s.Sample.Keys, s.Sample.Shuffle))
	default:
		parts = append(parts, "result")
	}
	return fmt.Sprintf("stage %d (%s): %s", s.ID, plural(s.Partitions, "task"), strings.Join(parts, " → "))
}

// plural is "1 task" or "n tasks".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// Tasks is the number of tasks of the plan: every stage's partitions.
func (p *Plan) Tasks() int {
	n := 0
	for _, s := range p.Stages {
		n += s.Partitions
	}
	return n
}
