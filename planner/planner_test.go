package planner

import (
	"strings"
	"testing"
)

func wordCountJob(splits, partitions int) Job {
	job := Job{Datasets: []Dataset{
		{ID: 0, Op: OpSource},
		{ID: 1, Op: OpFlatMap, Parents: []int{0}, Func: FuncRef{"wc", "split"}},
		{ID: 2, Op: OpFilter, Parents: []int{1}, Func: FuncRef{"wc", "long"}},
		{ID: 3, Op: OpReduceByKey, Parents: []int{2}, Func: FuncRef{"wc", "sum"}, Partitions: partitions},
		{ID: 4, Op: OpMap, Parents: []int{3}, Func: FuncRef{"fmt", "pretty"}},
	}}
	for i := range splits {
		job.Splits = append(job.Splits, Split{Path: "in.txt", Offset: int64(i) * 10, Length: 10})
	}
	return job
}

func TestBuildCutsAtShuffle(t *testing.T) {
	p, err := Build(wordCountJob(2, 4))
	if err != nil {
		t.Fatal(err)
	}
	want := `stage 1 (4 tasks): shuffle 0 → reduce wc.sum → map fmt.pretty → result
└─ stage 0 (2 tasks): source (2 splits) → flat_map wc.split → filter wc.long → shuffle 0 (4 partitions, combine wc.sum)
`
	if got := p.String(); got != want {
		t.Fatalf("plan:\n%s\nwant:\n%s", got, want)
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		job  Job
		want string
	}{
		{"empty", Job{}, "no datasets"},
		{"no splits", Job{Datasets: []Dataset{{Op: OpSource}}}, "no splits"},
		{"bad op", Job{Datasets: []Dataset{{Op: OpSource}, {ID: 1, Op: "zip", Parents: []int{0}}}, Splits: []Split{{}}}, "unknown operator"},
		{"join of one", Job{Datasets: []Dataset{{Op: OpSource}, {ID: 1, Op: OpJoin, Parents: []int{0}, Partitions: 2}}, Splits: []Split{{}}}, "takes 2 parent(s)"},
		{"dataset used twice", Job{Datasets: []Dataset{{Op: OpSource}, {ID: 1, Op: OpJoin, Parents: []int{0, 0}, Partitions: 2}}, Splits: []Split{{}}}, "another dataset reads already"},
		{"unused dataset", Job{Datasets: []Dataset{{Op: OpSource}, {ID: 1, Op: OpSource, Splits: []Split{{}}}, {ID: 2, Op: OpMap, Parents: []int{0}}}, Splits: []Split{{}}}, "never used"},
		{"zero partitions", Job{Datasets: []Dataset{{Op: OpSource}, {ID: 1, Op: OpReduceByKey, Parents: []int{0}}}, Splits: []Split{{}}}, "at least one partition"},
	}
	for _, tt := range tests {
		if _, err := Build(tt.job); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Build = %v, want %q", tt.name, err, tt.want)
		}
	}
}

// harness drives a Scheduler the way the coordinator does.
type harness struct {
	t *testing.T
	s *Scheduler
}

func newHarness(t *testing.T, splits, parts int, cfg Config) *harness {
	p, err := Build(wordCountJob(splits, parts))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, s: NewScheduler(p, cfg)}
}

// launchAll takes every runnable task for agent.
func (h *harness) launchAll(agent string) []TaskSpec {
	var out []TaskSpec
	for {
		spec, ok := h.s.Next(agent, true)
		if !ok {
			return out
		}
		out = append(out, spec)
	}
}

func (h *harness) succeed(specs []TaskSpec) {
	for _, sp := range specs {
		if !h.s.Succeeded(sp.Key, sp.Attempt) {
			h.t.Fatalf("success of %s attempt %d refused", sp.Key, sp.Attempt)
		}
	}
}

func TestSchedulerRunsStagesInOrder(t *testing.T) {
	h := newHarness(t, 3, 2, Config{})
	maps := h.launchAll("a1")
	if len(maps) != 3 || maps[0].Stage.ID != 0 || maps[0].Split == nil {
		t.Fatalf("first wave %v, want the 3 map tasks", maps)
	}
	if h.s.HasRunnable() {
		t.Fatal("reduce tasks runnable before the map stage is done")
	}
	h.succeed(maps[:2])
	if _, ok := h.s.Next("a1", true); ok {
		t.Fatal("reduce task launched with a map output missing")
	}
	h.succeed(maps[2:])
	reduces := h.launchAll("a2")
	if len(reduces) != 2 || len(reduces[0].Inputs) != 3 || reduces[0].Inputs[1].Agent != "a1" {
		t.Fatalf("reduce wave %+v", reduces)
	}
	h.succeed(reduces)
	if !h.s.Done() || h.s.Err() != nil {
		t.Fatalf("done=%v err=%v", h.s.Done(), h.s.Err())
	}
}

func TestSchedulerRetriesThenFails(t *testing.T) {
	h := newHarness(t, 1, 1, Config{MaxAttempts: 3})
	for attempt := range 3 {
		spec, ok := h.s.Next("a1", true)
		if !ok || spec.Attempt != attempt {
			t.Fatalf("attempt %d: got %+v, %v", attempt, spec, ok)
		}
		h.s.Failed(spec.Key, spec.Attempt, Failure{Kind: TaskError, Msg: "boom"})
	}
	if err := h.s.Err(); err == nil || !strings.Contains(err.Error(), "task 0.0 failed 3 times, the last: boom") {
		t.Fatalf("err = %v", err)
	}
	if _, ok := h.s.Next("a1", true); ok {
		t.Fatal("a failed job still hands out tasks")
	}
}

func TestSchedulerAvoidsFailedAgent(t *testing.T) {
	h := newHarness(t, 1, 1, Config{})
	spec, _ := h.s.Next("a1", false)
	h.s.Failed(spec.Key, spec.Attempt, Failure{Kind: TaskError, Msg: "x"})
	if _, ok := h.s.Next("a1", false); ok {
		t.Fatal("retry placed on the agent it just failed on")
	}
	if spec, ok := h.s.Next("a2", false); !ok || spec.Attempt != 1 {
		t.Fatalf("retry on a2: %+v %v", spec, ok)
	}
}

func TestSchedulerRefusesStaleAttempts(t *testing.T) {
	h := newHarness(t, 1, 1, Config{})
	first, _ := h.s.Next("a1", true)
	h.s.Failed(first.Key, first.Attempt, Failure{Kind: Lost})
	second, _ := h.s.Next("a2", true)
	if h.s.Succeeded(first.Key, first.Attempt) {
		t.Fatal("stale attempt's success accepted")
	}
	if h.s.Failed(first.Key, first.Attempt, Failure{Kind: TaskError}) {
		t.Fatal("stale attempt's failure accepted")
	}
	if !h.s.Succeeded(second.Key, second.Attempt) || h.s.Succeeded(second.Key, second.Attempt) {
		t.Fatal("current attempt must succeed exactly once")
	}
}

func TestFetchFailureRerunsOnlyTheLostMap(t *testing.T) {
	h := newHarness(t, 3, 1, Config{})
	h.succeed(h.launchAll("a1"))
	red, _ := h.s.Next("a2", true)
	h.s.Failed(red.Key, red.Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 1, Msg: "checksum", Corrupt: true})
	rerun := h.launchAll("a3")
	if len(rerun) != 1 || rerun[0].Key != (TaskKey{0, 1}) || rerun[0].Attempt != 1 {
		t.Fatalf("rerun %+v, want only map 1, attempt 1", rerun)
	}
	h.succeed(rerun)
	red2, ok := h.s.Next("a2", true)
	if !ok || red2.Inputs[1].Agent != "a3" || red2.Inputs[1].Attempt != 1 {
		t.Fatalf("reduce retry inputs %+v", red2.Inputs)
	}
	h.succeed([]TaskSpec{red2})
	if !h.s.Done() {
		t.Fatal("not done")
	}
}

func TestAgentLostReschedulesItsWork(t *testing.T) {
	h := newHarness(t, 2, 1, Config{})
	m0, _ := h.s.Next("a1", true)
	m1, _ := h.s.Next("a2", true)
	h.succeed([]TaskSpec{m0})
	lost := h.s.AgentLost("a1")
	if len(lost) != 0 {
		t.Fatalf("a1 had no running task, lost %v", lost)
	}
	lost = h.s.AgentLost("a2")
	if len(lost) != 1 || lost[0].Key != m1.Key {
		t.Fatalf("lost %v, want m1", lost)
	}
	h.s.Failed(m1.Key, m1.Attempt, Failure{Kind: Lost})
	again := h.launchAll("a3")
	if len(again) != 2 {
		t.Fatalf("after losing both agents %d map tasks rerun, want 2", len(again))
	}
	p := h.s.Progress()
	if p[0].Running != 2 || p[0].Done != 0 || p[1].Tasks != 1 {
		t.Fatalf("progress %+v", p)
	}
}

// A missing file or an unreachable agent costs every output on that agent
// (Spark's host-level invalidation); a failure about an output already
// replaced charges nothing; each output has a budget of its own.
func TestFetchFailureLosesTheAgentsOutputs(t *testing.T) {
	h := newHarness(t, 3, 4, Config{})
	m0, _ := h.s.Next("a1", true)
	m1, _ := h.s.Next("a1", true)
	m2, _ := h.s.Next("a2", true)
	h.succeed([]TaskSpec{m0, m1, m2})
	reds := h.launchAll("a3")
	if len(reds) != 4 {
		t.Fatalf("%d reduce tasks, want 4", len(reds))
	}
	// The first reducer finds map 1's file gone: maps 0 and 1 (both on a1)
	// run again, map 2 (on a2) does not.
	h.s.Failed(reds[0].Key, reds[0].Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 1, MapAttempt: 0, Msg: "no such file"})
	// The others notice too, naming outputs of attempt 0 that are already
	// forgotten: stale, charged nowhere.
	for _, r := range reds[1:] {
		h.s.Failed(r.Key, r.Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 0, MapAttempt: 0, Msg: "no such file"})
	}
	rerun := h.launchAll("a2")
	if len(rerun) != 2 || rerun[0].Key != m0.Key || rerun[1].Key != m1.Key {
		t.Fatalf("rerun %v, want maps 0 and 1", rerun)
	}
	if st := h.s.State(); st.Losses[0][1] != 1 || st.Losses[0][0] != 0 {
		t.Fatalf("losses %v, want map 1 of shuffle 0 once", st.Losses)
	}
	h.succeed(rerun)
	reds = h.launchAll("a3")
	if len(reds) != 4 || reds[0].Inputs[0].Attempt != 1 || reds[0].Inputs[2].Attempt != 0 {
		t.Fatalf("reduce retries %v", reds)
	}

	// One output lost past its budget (4) fails the job, naming it.
	for i := range 4 {
		h.s.Failed(reds[0].Key, reds[0].Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 2, MapAttempt: i, Corrupt: true, Msg: "checksum mismatch"})
		if err := h.s.Err(); err != nil {
			t.Fatalf("loss %d: %v", i+1, err)
		}
		again := h.launchAll("a1")
		if len(again) != 1 || again[0].Key != m2.Key {
			t.Fatalf("loss %d: rerun %v, want map 2", i+1, again)
		}
		h.succeed(again)
		reds[0], _ = h.s.Next("a3", true)
	}
	h.s.Failed(reds[0].Key, reds[0].Attempt, Failure{Kind: FetchFailed, ShuffleID: 0, MapIndex: 2, MapAttempt: 4, Corrupt: true, Msg: "checksum mismatch"})
	if err := h.s.Err(); err == nil || !strings.Contains(err.Error(), "map output 2 of shuffle 0 was lost 5 times (fetch failures), the last: checksum mismatch") {
		t.Fatalf("err = %v", err)
	}
}

// A fetch failure naming an output the job never wrote is the task's own
// fault: it counts as a task failure, not a loss.
func TestFetchFailureOfUnknownOutput(t *testing.T) {
	h := newHarness(t, 1, 1, Config{})
	h.succeed(h.launchAll("a1"))
	for range 3 {
		r, ok := h.s.Next("a2", true)
		if !ok {
			t.Fatal("the reducer is not retried")
		}
		h.s.Failed(r.Key, r.Attempt, Failure{Kind: FetchFailed, ShuffleID: 7, MapIndex: 0, Msg: "bogus"})
	}
	if err := h.s.Err(); err == nil || !strings.Contains(err.Error(), "failed 3 times, the last: bogus") {
		t.Fatalf("err = %v", err)
	}
}
