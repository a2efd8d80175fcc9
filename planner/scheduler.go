package planner

import (
	"bytes"
	"fmt"
	"slices"
)

// Config tunes a Scheduler. Zero fields mean the defaults.
type Config struct {
	// MaxAttempts is how many times a task may fail before the job fails
	// (default 3). Fetch failures do not count: they are the parent's fault.
	MaxAttempts int
	// MaxFetchFailures is how many times one map output may be lost to
	// fetch failures before the job fails (default 4, Spark's
	// spark.stage.maxConsecutiveAttempts): an output that keeps
	// disappearing is a bug, not bad luck. Outputs lost with their agent
	// (AgentLost) or forgotten beside the one a fetch named do not count.
	MaxFetchFailures int
}

// TaskKey names a task: a partition of a stage.
type TaskKey struct {
	Stage     int
	Partition int
}

func (k TaskKey) String() string { return fmt.Sprintf("%d.%d", k.Stage, k.Partition) }

// MapOutputLoc says where one map task's shuffle output lives.
type MapOutputLoc struct {
	MapIndex int
	Attempt  int
	Agent    string
}

// TaskSpec is everything a task attempt needs to run.
type TaskSpec struct {
	Key     TaskKey
	Attempt int // 0 for the first launch, counting every launch
	Stage   *Stage
	Split   *Split         // the input of a source stage's task
	Inputs  []MapOutputLoc // the map outputs a shuffle-reading task reads its partition from
	// RightInputs are the map outputs of a join stage's right side.
	RightInputs []MapOutputLoc
	// BroadcastInputs are the map outputs of each of the stage's
	// Broadcasts, all of which the task reads.
	BroadcastInputs [][]MapOutputLoc
	// Bounds are the range bounds of the stage's shuffle output, when it
	// is partitioned by key range: Stage.ShuffleOut.Partitions-1 keys.
	Bounds [][]byte
}

// Own returns the spec with its stage's splits left out: a task reads its
// own Split, and the other tasks' splits (an inline source's rows, say)
// would make every launch as large as the whole source.
func (t TaskSpec) Own() TaskSpec {
	if t.Stage == nil || t.Stage.Splits == nil {
		return t
	}
	st := *t.Stage
	st.Splits = nil
	t.Stage = &st
	return t
}

// FailureKind says why a task attempt failed.
type FailureKind int

const (
	// TaskError: the task itself failed; retried up to MaxAttempts.
	TaskError FailureKind = iota + 1
	// FetchFailed: the task could not read a parent's map output; the map
	// task is rerun and the task waits for it.
	FetchFailed
	// Lost: the agent running the task went away; retried without counting.
	Lost
	// Fatal: retrying cannot help (invalid input, a bad module); the job fails.
	Fatal
)

// Failure describes a failed task attempt.
type Failure struct {
	Kind FailureKind
	Msg  string
	// For FetchFailed: the shuffle and map task whose output is missing,
	// and the attempt that wrote the output the task asked for (a failure
	// about an output already replaced is stale).
	ShuffleID, MapIndex, MapAttempt int
	// Corrupt (FetchFailed): the output's bytes were read and are not a
	// valid block. Only that output is lost; otherwise (a missing file, an
	// unreachable agent) every output on its agent is.
	Corrupt bool `json:",omitempty"`
}

type partState int

const (
	pending partState = iota
	running
	done
)

type taskState struct {
	state    partState
	attempt  int // the attempt that is running or succeeded; -1 before the first launch
	failures int
	agent    string // where it runs or ran
	avoid    string // the agent of its last failure
}

// Scheduler runs one job's plan: it hands out tasks in dependency order and
// reacts to their outcomes. It is not safe for concurrent use; the
// coordinator's loop owns it.
type Scheduler struct {
	plan    *Plan
	cfg     Config
	tasks   [][]taskState           // [stage][partition]
	outputs map[int][]*MapOutputLoc // shuffle ID -> map index -> location
	losses  map[int]map[int]int     // shuffle ID -> map index -> fetch failures that lost it
	err     error
	samples map[TaskKey][][]byte // of sample tasks that succeeded
	bounds  map[int][][]byte     // shuffle ID -> range bounds
}

// NewScheduler prepares the run of a plan.
func NewScheduler(plan *Plan, cfg Config) *Scheduler {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.MaxFetchFailures <= 0 {
		cfg.MaxFetchFailures = 4
	}
	s := &Scheduler{plan: plan, cfg: cfg, outputs: map[int][]*MapOutputLoc{}, losses: map[int]map[int]int{}, samples: map[TaskKey][][]byte{}, bounds: map[int][][]byte{}}
	for _, st := range plan.Stages {
		ts := make([]taskState, st.Partitions)
		for i := range ts {
			ts[i].attempt = -1
		}
		s.tasks = append(s.tasks, ts)
		if st.ShuffleOut != nil && s.outputs[st.ShuffleOut.ID] == nil {
			s.outputs[st.ShuffleOut.ID] = make([]*MapOutputLoc, max(st.ShuffleOut.Maps, st.Partitions))
		}
	}
	return s
}

// Plan is the plan being run.
func (s *Scheduler) Plan() *Plan { return s.plan }

// ready reports whether a stage's inputs all exist.
func (s *Scheduler) ready(st *Stage) bool {
	for _, id := range st.After {
		if !s.StageDone(id) {
			return false
		}
	}
	if !s.complete(st.ShuffleIn) || st.Join != nil && !s.complete(st.Join.Right) {
		return false
	}
	for _, dep := range st.Broadcasts {
		if !s.complete(dep) {
			return false
		}
	}
	return true
}

// complete reports whether every map output of dep exists (or dep is nil).
func (s *Scheduler) complete(dep *ShuffleDep) bool {
	if dep == nil {
		return true
	}
	for _, o := range s.outputs[dep.ID] {
		if o == nil {
			return false
		}
	}
	return true
}

// Next returns the next task to launch on agent and marks it running. A
// task that last failed on this agent is passed over unless avoidOK.
func (s *Scheduler) Next(agent string, avoidOK bool) (TaskSpec, bool) {
	if s.err != nil {
		return TaskSpec{}, false
	}
	for _, st := range s.plan.Stages {
		if !s.ready(st) {
			continue
		}
		p := s.pick(st, agent, avoidOK)
		if p < 0 {
			continue
		}
		t := &s.tasks[st.ID][p]
		t.state, t.agent = running, agent
		t.attempt++
		spec := TaskSpec{Key: TaskKey{st.ID, p}, Attempt: t.attempt, Stage: st}
		if st.ShuffleOut != nil && st.ShuffleOut.Range {
			spec.Bounds = s.bounds[st.ShuffleOut.ID]
		}
		parts := st.InputPartitions(p)
		for _, b := range st.Broadcasts {
			// A broadcast whole; a cache joined in place, the partitions
			// of it that match the task's.
			spec.BroadcastInputs = append(spec.BroadcastInputs, s.inputs(b, parts))
		}
		if st.Splits != nil {
			spec.Split = &st.Splits[p]
		} else {
			spec.Inputs = s.inputs(st.ShuffleIn, parts)
			if st.Join != nil {
				spec.RightInputs = s.inputs(st.Join.Right, parts)
			}
		}
		return spec, true
	}
	return TaskSpec{}, false
}

// pick chooses a pending task of a ready stage for agent, or -1. A task
// that reads a cache prefers the agent that holds its partition, which it
// then reads from local disk.
func (s *Scheduler) pick(st *Stage, agent string, avoidOK bool) int {
	first := -1
	for p := range s.tasks[st.ID] {
		t := &s.tasks[st.ID][p]
		if t.state != pending || (!avoidOK && t.avoid == agent) {
			continue
		}
		if first < 0 {
			first = p
		}
		if st.ShuffleIn == nil || !st.ShuffleIn.Identity() {
			return p
		}
		for _, q := range st.InputPartitions(p) {
			if o := s.outputs[st.ShuffleIn.ID][q]; o != nil && o.Agent == agent {
				return p
			}
		}
	}
	return first
}

// inputs are the map outputs of dep that hold the shuffle partitions
// parts: every one, or for a cache only those of the same indexes.
func (s *Scheduler) inputs(dep *ShuffleDep, parts []int) []MapOutputLoc {
	outs := s.outputs[dep.ID]
	var locs []MapOutputLoc
	if dep.Identity() {
		for _, q := range parts {
			locs = append(locs, *outs[q])
		}
		return locs
	}
	for _, o := range outs {
		locs = append(locs, *o)
	}
	return locs
}

// StageDone reports whether every task of stage id has succeeded.
func (s *Scheduler) StageDone(id int) bool {
	for _, t := range s.tasks[id] {
		if t.state != done {
			return false
		}
	}
	return true
}

// HasRunnable reports whether Next would return a task for some agent.
func (s *Scheduler) HasRunnable() bool { return s.Runnable() > 0 }

// Runnable is how many tasks Next would return, agents aside.
func (s *Scheduler) Runnable() int {
	if s.err != nil {
		return 0
	}
	n := 0
	for _, st := range s.plan.Stages {
		if !s.ready(st) {
			continue
		}
		for _, t := range s.tasks[st.ID] {
			if t.state == pending {
				n++
			}
		}
	}
	return n
}

// current returns the state of key if attempt is its current attempt and it
// is running; a stale or duplicate report gets nil.
func (s *Scheduler) current(key TaskKey, attempt int) *taskState {
	if key.Stage < 0 || key.Stage >= len(s.tasks) || key.Partition < 0 || key.Partition >= len(s.tasks[key.Stage]) {
		return nil
	}
	t := &s.tasks[key.Stage][key.Partition]
	if t.state != running || t.attempt != attempt {
		return nil
	}
	return t
}

// RecordSamples keeps the keys a sample task's attempt returned; call it
// before Succeeded. It returns false for a stale attempt.
func (s *Scheduler) RecordSamples(key TaskKey, attempt int, keys [][]byte) bool {
	if s.current(key, attempt) == nil || s.plan.Stages[key.Stage].Sample == nil {
		return false
	}
	s.samples[key] = keys
	return true
}

// Succeeded records a successful attempt. It returns false, and changes
// nothing, for a stale or duplicate attempt: its output must not be used.
func (s *Scheduler) Succeeded(key TaskKey, attempt int) bool {
	t := s.current(key, attempt)
	if t == nil {
		return false
	}
	t.state = done
	st := s.plan.Stages[key.Stage]
	if st.ShuffleOut != nil {
		m := st.MapOffset + key.Partition
		s.outputs[st.ShuffleOut.ID][m] = &MapOutputLoc{MapIndex: m, Attempt: attempt, Agent: t.agent}
	}
	if st.Sample != nil && s.StageDone(st.ID) {
		var keys [][]byte
		for p := range st.Partitions {
			keys = append(keys, s.samples[TaskKey{st.ID, p}]...)
		}
		s.bounds[st.Sample.Shuffle] = RangeBounds(keys, s.plan.Stages[st.Sample.Shuffle].ShuffleOut.Partitions)
	}
	return true
}

// RangeBounds picks partitions-1 strictly increasing bounds that split
// the sampled keys into equal parts. Where the samples repeat a key (a
// skewed key cannot be split), the next bound is the smallest key above
// the previous one, so that a partition is left empty rather than a key
// split.
func RangeBounds(keys [][]byte, partitions int) [][]byte {
	slices.SortFunc(keys, bytes.Compare)
	bounds := make([][]byte, 0, max(partitions-1, 0))
	var prev []byte
	for i := 1; i < partitions; i++ {
		var b []byte
		if len(keys) > 0 {
			b = keys[i*len(keys)/partitions]
		}
		if i > 1 && bytes.Compare(b, prev) <= 0 || i == 1 && len(keys) == 0 {
			b = append(slices.Clone(prev), 0) // the successor of prev
		}
		bounds = append(bounds, b)
		prev = b
	}
	return bounds
}

// Failed records a failed attempt and decides what follows: a retry, a
// rerun of the lost map output, or the end of the job. It returns false for
// a stale attempt.
func (s *Scheduler) Failed(key TaskKey, attempt int, f Failure) bool {
	t := s.current(key, attempt)
	if t == nil {
		return false
	}
	t.state = pending
	switch f.Kind {
	case Lost:
	case FetchFailed:
		if !s.fetchFailed(f) {
			// It names no output this job wrote: a fault of the task's own.
			t.failures++
			if t.failures >= s.cfg.MaxAttempts {
				s.fail(fmt.Errorf("task %s failed %d times, the last: %s", key, t.failures, f.Msg))
			}
		}
	case Fatal:
		s.fail(fmt.Errorf("task %s: %s", key, f.Msg))
	default:
		t.failures++
		t.avoid = t.agent
		if t.failures >= s.cfg.MaxAttempts {
			s.fail(fmt.Errorf("task %s failed %d times, the last: %s", key, t.failures, f.Msg))
		}
	}
	return true
}

// fetchFailed forgets what a failed fetch says is lost, as Spark's
// host-level invalidation does: a corrupt block costs its own map output;
// a missing file or an unreachable agent costs every output of the job on
// that agent, since they are gone the same way, and rerunning them at once
// saves a round of failed fetches per output. Each output named by a
// failure counts against its own budget, so that a job with many reducers
// survives the loss of an agent's files however many of them notice it. A
// failure about an output already forgotten or replaced charges nothing:
// the task waits for the rerun. It returns false when f names no output of
// the job.
func (s *Scheduler) fetchFailed(f Failure) bool {
	outs := s.outputs[f.ShuffleID]
	if f.MapIndex < 0 || f.MapIndex >= len(outs) {
		return false
	}
	o := outs[f.MapIndex]
	if o == nil || o.Attempt != f.MapAttempt {
		return true // stale
	}
	if s.losses[f.ShuffleID] == nil {
		s.losses[f.ShuffleID] = map[int]int{}
	}
	s.losses[f.ShuffleID][f.MapIndex]++
	if n := s.losses[f.ShuffleID][f.MapIndex]; n > s.cfg.MaxFetchFailures {
		s.fail(fmt.Errorf("map output %d of shuffle %d was lost %d times (fetch failures), the last: %s", f.MapIndex, f.ShuffleID, n, f.Msg))
		return true
	}
	if f.Corrupt {
		s.lostOutput(f.ShuffleID, f.MapIndex)
	} else {
		s.lostOn(o.Agent)
	}
	return true
}

// lostOn forgets every map output of the job that lives on agent.
func (s *Scheduler) lostOn(agent string) {
	for shuffle, outs := range s.outputs {
		for i, o := range outs {
			if o != nil && o.Agent == agent {
				s.lostOutput(shuffle, i)
			}
		}
	}
}

// lostOutput forgets a map output so that its map task runs again.
func (s *Scheduler) lostOutput(shuffle, mapIndex int) {
	outs, ok := s.outputs[shuffle]
	if !ok || mapIndex < 0 || mapIndex >= len(outs) || outs[mapIndex] == nil {
		return
	}
	outs[mapIndex] = nil
	for _, st := range s.plan.Stages {
		if st.ShuffleOut != nil && st.ShuffleOut.ID == shuffle {
			p := mapIndex - st.MapOffset
			if p < 0 || p >= st.Partitions {
				continue // another writer's output (a union)
			}
			t := &s.tasks[st.ID][p]
			if t.state == done {
				t.state = pending
			}
		}
	}
}

// AgentLost forgets every map output that lived on agent and returns the
// running tasks there, which the caller must report with Failed (Lost).
func (s *Scheduler) AgentLost(agent string) []TaskSpec {
	s.lostOn(agent)
	var lost []TaskSpec
	for sid, ts := range s.tasks {
		for p, t := range ts {
			if t.state == running && t.agent == agent {
				lost = append(lost, TaskSpec{Key: TaskKey{sid, p}, Attempt: t.attempt, Stage: s.plan.Stages[sid]})
			}
		}
	}
	return lost
}

func (s *Scheduler) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

// Err is why the job failed, or nil.
func (s *Scheduler) Err() error { return s.err }

// Done reports whether every task of the result stage has succeeded.
func (s *Scheduler) Done() bool {
	if s.err != nil {
		return false
	}
	for _, t := range s.tasks[s.plan.Result().ID] {
		if t.state != done {
			return false
		}
	}
	return true
}

// Running is the number of attempts in flight.
func (s *Scheduler) Running() int {
	n := 0
	for _, ts := range s.tasks {
		for _, t := range ts {
			if t.state == running {
				n++
			}
		}
	}
	return n
}

// StageProgress counts a stage's tasks by state.
type StageProgress struct {
	Stage                int
	Tasks, Running, Done int
}

// Progress reports every stage's progress.
func (s *Scheduler) Progress() []StageProgress {
	out := make([]StageProgress, len(s.tasks))
	for sid, ts := range s.tasks {
		out[sid] = StageProgress{Stage: sid, Tasks: len(ts)}
		for _, t := range ts {
			switch t.state {
			case running:
				out[sid].Running++
			case done:
				out[sid].Done++
			}
		}
	}
	return out
}
