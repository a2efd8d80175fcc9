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
	// MaxFetchFailures is how many fetch failures a job survives before it
	// fails (default 8): a map output that keeps disappearing is a bug, not
	// bad luck.
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
	// For FetchFailed: the shuffle and map task whose output is missing.
	ShuffleID, MapIndex int
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
	plan          *Plan
	cfg           Config
	tasks         [][]taskState           // [stage][partition]
	outputs       map[int][]*MapOutputLoc // shuffle ID -> map index -> location
	fetchFailures int
	err           error
	samples       map[TaskKey][][]byte // of sample tasks that succeeded
	bounds        map[int][][]byte     // shuffle ID -> range bounds
}

// NewScheduler prepares the run of a plan.
func NewScheduler(plan *Plan, cfg Config) *Scheduler {
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 3
	}
	if cfg.MaxFetchFailures <= 0 {
		cfg.MaxFetchFailures = 8
	}
	s := &Scheduler{plan: plan, cfg: cfg, outputs: map[int][]*MapOutputLoc{}, samples: map[TaskKey][][]byte{}, bounds: map[int][][]byte{}}
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
		s.fetchFailures++
		if s.fetchFailures > s.cfg.MaxFetchFailures {
			s.fail(fmt.Errorf("task %s: %d fetch failures, the last: %s", key, s.fetchFailures, f.Msg))
			return true
		}
		s.lostOutput(f.ShuffleID, f.MapIndex)
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
	for shuffle, outs := range s.outputs {
		for i, o := range outs {
			if o != nil && o.Agent == agent {
				s.lostOutput(shuffle, i)
			}
		}
	}
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
