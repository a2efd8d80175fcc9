package planner

import (
	"errors"
	"fmt"
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
)

// Narrow reports whether op computes a partition from one partition of its
// parent, so that it can be fused into its parent's pipeline.
func (op Op) Narrow() bool { return op == OpMap || op == OpFlatMap || op == OpFilter }

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
}

// Split is a piece of a source for one task: a byte range of a file.
type Split struct {
	Path   string
	Offset int64
	Length int64
}

// Job is a logical DAG. Datasets are in topological order (parents before
// children), IDs are their indexes, and the last one is the result.
type Job struct {
	Datasets []Dataset
	// Splits of the source dataset, one map task each.
	Splits []Split
}

// Step is one fused narrow operator of a stage's pipeline.
type Step struct {
	Op   Op
	Func FuncRef
}

// ShuffleDep is a shuffle between two stages.
type ShuffleDep struct {
	ID         int
	Partitions int
	// Combine, if set, folds equal keys on the map side (and is the reduce
	// function on the reduce side).
	Combine *FuncRef
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
	// result stage.
	ShuffleOut *ShuffleDep
	Partitions int
}

// IsResult reports whether the stage produces the job's result.
func (s *Stage) IsResult() bool { return s.ShuffleOut == nil }

// Plan is the physical plan of a job. It is immutable once built; the
// progress of a run lives in a Scheduler.
type Plan struct {
	Stages []*Stage // in dependency order; the last is the result stage
}

// Result is the result stage.
func (p *Plan) Result() *Stage { return p.Stages[len(p.Stages)-1] }

// Build cuts a job into stages at its shuffle dependencies.
func Build(job Job) (*Plan, error) {
	if len(job.Datasets) == 0 {
		return nil, errors.New("planner: job has no datasets")
	}
	if job.Datasets[0].Op != OpSource {
		return nil, errors.New("planner: the first dataset must be a source")
	}
	if len(job.Splits) == 0 {
		return nil, errors.New("planner: the source has no splits (no input)")
	}
	p := &Plan{}
	cur := &Stage{ID: 0, Splits: job.Splits, Partitions: len(job.Splits)}
	for i, d := range job.Datasets {
		if d.ID != i {
			return nil, fmt.Errorf("planner: dataset %d has ID %d", i, d.ID)
		}
		if i == 0 {
			continue
		}
		if len(d.Parents) != 1 || d.Parents[0] != i-1 {
			return nil, fmt.Errorf("planner: dataset %d: only linear chains are supported yet (parents %v)", i, d.Parents)
		}
		switch {
		case d.Op.Narrow():
			cur.Steps = append(cur.Steps, Step{Op: d.Op, Func: d.Func})
		case d.Op == OpReduceByKey:
			if d.Partitions < 1 {
				return nil, fmt.Errorf("planner: dataset %d: reduce_by_key needs at least one partition", i)
			}
			fn := d.Func
			dep := &ShuffleDep{ID: len(p.Stages), Partitions: d.Partitions, Combine: &fn}
			cur.ShuffleOut = dep
			p.Stages = append(p.Stages, cur)
			cur = &Stage{ID: len(p.Stages), Parents: []int{cur.ID}, ShuffleIn: dep, Reduce: &fn, Partitions: d.Partitions}
		default:
			return nil, fmt.Errorf("planner: dataset %d: unknown operator %q", i, d.Op)
		}
	}
	p.Stages = append(p.Stages, cur)
	return p, nil
}

// String renders the plan as a tree, result stage first:
//
//	stage 1 (4 tasks): shuffle 0 → reduce wc.sum → result
//	└─ stage 0 (2 tasks): source (2 splits) → flat_map wc.split → shuffle 0 (4 partitions, combine wc.sum)
func (p *Plan) String() string {
	var b strings.Builder
	var walk func(s *Stage, prefix, indent string)
	walk = func(s *Stage, prefix, indent string) {
		b.WriteString(prefix)
		b.WriteString(s.describe())
		b.WriteByte('\n')
		for i, id := range s.Parents {
			branch, next := "├─ ", "│  "
			if i == len(s.Parents)-1 {
				branch, next = "└─ ", "   "
			}
			walk(p.Stages[id], indent+branch, indent+next)
		}
	}
	walk(p.Result(), "", "")
	return b.String()
}

func (s *Stage) describe() string {
	parts := []string{}
	if s.ShuffleIn != nil {
		parts = append(parts, fmt.Sprintf("shuffle %d", s.ShuffleIn.ID))
	} else {
		parts = append(parts, fmt.Sprintf("source (%d splits)", len(s.Splits)))
	}
	if s.Reduce != nil {
		parts = append(parts, "reduce "+s.Reduce.String())
	}
	for _, st := range s.Steps {
		parts = append(parts, string(st.Op)+" "+st.Func.String())
	}
	if s.ShuffleOut != nil {
		out := fmt.Sprintf("shuffle %d (%d partitions", s.ShuffleOut.ID, s.ShuffleOut.Partitions)
		if s.ShuffleOut.Combine != nil {
			out += ", combine " + s.ShuffleOut.Combine.String()
		}
		parts = append(parts, out+")")
	} else {
		parts = append(parts, "result")
	}
	return fmt.Sprintf("stage %d (%d tasks): %s", s.ID, s.Partitions, strings.Join(parts, " → "))
}
