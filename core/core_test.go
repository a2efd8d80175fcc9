package core

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/planner"
)

// fixture applies commands at a clock the test moves.
type fixture struct {
	t   *testing.T
	c   *Core
	now time.Time
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, c: c, now: time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)}
}

func (f *fixture) apply(cmd Command) []Decision {
	f.t.Helper()
	cmd.Time = f.now
	return f.c.Apply(cmd)
}

func (f *fixture) agent(name string, cpu int64, running ...Attempt) []Decision {
	return f.apply(Command{AgentUp: &AgentUp{Name: name, Resources: allocator.Resources{CPU: cpu, Mem: 4096}, BlockAddr: name + ":1", Running: running}})
}

// mapJob is a source of n splits and a map: one stage of n tasks.
func mapJob(n int) planner.Job {
	j := planner.Job{Datasets: []planner.Dataset{{ID: 0, Op: planner.OpSource}, {ID: 1, Op: planner.OpMap, Parents: []int{0}, Func: planner.FuncRef{Module: "m", Function: "f"}}}}
	for i := range n {
		j.Splits = append(j.Splits, planner.Split{Generate: true, Offset: int64(i), Length: 1})
	}
	return j
}

// reduceJob is a source of n splits shuffled to p partitions.
func reduceJob(n, p int) planner.Job {
	j := mapJob(n)
	j.Datasets[1] = planner.Dataset{ID: 1, Op: planner.OpReduceByKey, Parents: []int{0}, Func: planner.FuncRef{Module: "m", Function: "sum"}, Partitions: p}
	return j
}

var task = allocator.Resources{CPU: 1000, Mem: 512}

func (f *fixture) submit(tenant string, job planner.Job) string {
	f.t.Helper()
	for _, d := range f.apply(Command{Submit: &Submit{Request: "r", Tenant: tenant, Name: "test", Job: job, Task: task}}) {
		if a, ok := d.(Accepted); ok {
			return a.Job
		}
	}
	f.t.Fatal("the submission was not accepted")
	return ""
}

func launches(ds []Decision) []Launch {
	var out []Launch
	for _, d := range ds {
		if l, ok := d.(Launch); ok {
			out = append(out, l)
		}
	}
	return out
}

func find[T Decision](ds []Decision) (T, bool) {
	for _, d := range ds {
		if x, ok := d.(T); ok {
			return x, true
		}
	}
	var zero T
	return zero, false
}

func (f *fixture) succeed(l Launch) []Decision {
	return f.apply(Command{Status: &Status{Job: l.Job, Task: l.Spec.Key, Attempt: l.Spec.Attempt, Agent: l.Agent, RecordsOut: 1}})
}

func TestJobRunsCommitsAndEnds(t *testing.T) {
	f := newFixture(t, Config{})
	f.agent("a1", 2000)
	ds := f.apply(Command{Submit: &Submit{Request: "r1", Tenant: "t", Name: "wc", Job: mapJob(3), Task: task}})
	ls := launches(ds)
	if len(ls) != 2 {
		t.Fatalf("%d launches on an agent with room for 2: %v", len(ls), ds)
	}
	f.now = f.now.Add(time.Second)
	ds = f.succeed(ls[0])
	ls = append(ls[1:], launches(ds)...)
	if len(ls) != 2 || ls[1].Spec.Key.Partition != 2 {
		t.Fatalf("the freed slot did not launch the third task: %v", ds)
	}
	f.succeed(ls[0])
	ds = f.succeed(ls[1])
	cm, ok := find[Commit](ds)
	if !ok || cm.Err != "" || fmt.Sprint(cm.Parts) != "[0 0 0]" {
		t.Fatalf("no commit of attempts [0 0 0]: %v", ds)
	}
	if rm, ok := find[RemoveJob](ds); !ok || rm.Agents[0] != "a1" {
		t.Fatalf("shuffle files not removed: %v", ds)
	}
	ds = f.apply(Command{Committed: &Committed{Job: cm.Job, Output: "vol:out"}})
	if _, ok := find[Ended](ds); !ok {
		t.Fatalf("the job did not end: %v", ds)
	}
	r, ok := f.c.Record(cm.Job)
	if !ok || r.State != Succeeded || r.Output != "vol:out" || r.RecordsOut != 3 || r.Attempts != 3 || r.Duration() != time.Second {
		t.Fatalf("record %+v", r)
	}
	info, _ := f.c.Job(cm.Job)
	if info.State != Succeeded || len(info.Stages) != 1 || info.Stages[0].Done != 3 {
		t.Fatalf("job info %+v", info)
	}
}

func TestCancelStopsEverything(t *testing.T) {
	f := newFixture(t, Config{})
	f.agent("a1", 2000)
	f.agent("a2", 2000)
	id := f.submit("t", mapJob(8))
	ds := f.apply(Command{Cancel: &Cancel{Job: id, Reason: "by the user"}})
	rm, ok := find[RemoveJob](ds)
	if !ok || len(rm.Agents) != 2 {
		t.Fatalf("cancel did not stop the job's attempts on both agents: %v", ds)
	}
	if cm, _ := find[Commit](ds); cm.Err != "canceled: by the user" {
		t.Fatalf("commit %+v", cm)
	}
	if len(launches(ds)) != 0 {
		t.Fatal("cancel launched")
	}
	// The freed slots go to nobody of this job, and late statuses change
	// nothing.
	ds = f.apply(Command{Status: &Status{Job: id, Task: planner.TaskKey{Partition: 0}, Agent: "a1"}})
	if len(launches(ds)) != 0 {
		t.Fatalf("a late status launched: %v", ds)
	}
	f.apply(Command{Committed: &Committed{Job: id}})
	if r, _ := f.c.Record(id); r.State != Canceled {
		t.Fatalf("state %s", r.State)
	}
	if u := f.c.st.Usage["t"]; u.Running != 0 {
		t.Fatalf("%d attempts still counted", u.Running)
	}
}

func TestReconcile(t *testing.T) {
	f := newFixture(t, Config{})
	f.agent("a1", 3000)
	id := f.submit("t", mapJob(3))
	running := f.c.RunningOn("a1")
	if len(running) != 3 {
		t.Fatalf("%d attempts on a1", len(running))
	}
	// a1 registers again: it runs attempt 0 of task 0.0, not 0.1, and
	// runs an attempt the core never placed.
	stranger := Attempt{Job: "job-99", Task: planner.TaskKey{}, Attempt: 4}
	ds := f.agent("a1", 3000, running[0], running[2], stranger)
	k, ok := find[Kill](ds)
	if !ok || len(k.Attempts) != 1 || k.Attempts[0] != stranger {
		t.Fatalf("the unknown attempt was not killed: %v", ds)
	}
	ls := launches(ds)
	if len(ls) != 1 || ls[0].Spec.Key != running[1].Task || ls[0].Spec.Attempt != 1 {
		t.Fatalf("the missing attempt was not run again: %v", ds)
	}
	logs, _ := f.c.Logs(id, "0.1")
	if len(logs) != 1 || logs[0].Outcome != "lost" {
		t.Fatalf("logs %+v", logs)
	}
}

func TestAgentLostRecomputesItsOutputs(t *testing.T) {
	f := newFixture(t, Config{})
	f.agent("a1", 1000)
	id := f.submit("t", reduceJob(2, 1))
	f.agent("a2", 1000)
	// Both map tasks run, one on each agent.
	var ls []Launch
	for _, at := range append(f.c.RunningOn("a1"), f.c.RunningOn("a2")...) {
		ls = append(ls, Launch{Job: at.Job, Spec: planner.TaskSpec{Key: at.Task, Attempt: at.Attempt}, Agent: agentOf(f.c, at)})
	}
	if len(ls) != 2 {
		t.Fatalf("%d map tasks run", len(ls))
	}
	f.succeed(ls[0])
	ds := f.succeed(ls[1])
	red := launches(ds)
	if len(red) != 1 || red[0].Spec.Key.Stage != 1 {
		t.Fatalf("the reducer did not start: %v", ds)
	}
	lost := ls[0].Agent
	ds = f.apply(Command{AgentLost: &AgentName{Name: lost}})
	if pl, ok := find[PeerLost](ds); !ok || pl.Agent != lost || pl.BlockAddr != lost+":1" {
		t.Fatalf("agents not told of the loss: %v", ds)
	}
	if red[0].Agent == lost {
		logs, _ := f.c.Logs(id, "1.0")
		if len(logs) == 0 || logs[len(logs)-1].Outcome != "lost" {
			t.Fatalf("the reducer's loss is not in the logs: %+v", logs)
		}
	}
	info, _ := f.c.Job(id)
	if info.Stages[0].Done != 1 {
		t.Fatalf("the lost agent's map output is still counted: %+v", info.Stages)
	}
}

func agentOf(c *Core, at Attempt) string {
	return c.st.Jobs[at.Job].Running[at.Task.String()].Agent
}

func TestPendingReasons(t *testing.T) {
	cfg := Config{Tenants: []Tenant{{Name: "small", Tenant: allocator.Tenant{Limit: allocator.Resources{CPU: 1000}}}}}
	tests := []struct {
		name   string
		setup  func(f *fixture) string
		stage  int
		code   string
		inText string
	}{
		{"no agents", func(f *fixture) string { return f.submit("t", mapJob(1)) }, 0, ReasonNoAgents, "no agent"},
		{"too large", func(f *fixture) string {
			f.apply(Command{AgentUp: &AgentUp{Name: "a1", Resources: allocator.Resources{CPU: 4000, Mem: 256}}})
			return f.submit("t", mapJob(1))
		}, 0, ReasonNoAgentFits, "task.memory"},
		{"parent stage", func(f *fixture) string { f.agent("a1", 1000); return f.submit("t", reduceJob(2, 1)) }, 1, ReasonParentStage, "parent stage 0"},
		{"quota", func(f *fixture) string { f.agent("a1", 4000); return f.submit("small", mapJob(3)) }, 0, ReasonQuota, "limit"},
		{"fair share", func(f *fixture) string {
			f.agent("a1", 1000)
			f.submit("other", mapJob(2))
			return f.submit("t", mapJob(1))
		}, 0, ReasonFairShare, "other 1.00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, cfg)
			id := tt.setup(f)
			info, _ := f.c.Job(id)
			why := info.Stages[tt.stage].Why
			if why == nil || why.Code != tt.code || !strings.Contains(why.Message, tt.inText) {
				t.Fatalf("reason %+v, want code %s with %q", why, tt.code, tt.inText)
			}
		})
	}
}

func TestRefusedAgentIsOfferedAgainAfterTheFilter(t *testing.T) {
	f := newFixture(t, Config{RefuseFor: 2 * time.Second})
	f.agent("a1", 1000)
	f.agent("a2", 1000)
	id := f.submit("t", mapJob(1))
	at := f.c.RunningOn("a1")
	agent := "a1"
	if len(at) == 0 {
		at, agent = f.c.RunningOn("a2"), "a2"
	}
	other := map[string]string{"a1": "a2", "a2": "a1"}[agent]
	// Fill the other agent with another job's task, then fail ours: it
	// avoids its agent, and the other one is full.
	f.submit("u", mapJob(1))
	ds := f.apply(Command{Status: &Status{Job: id, Task: at[0].Task, Attempt: 0, Agent: agent, Failure: &planner.Failure{Kind: planner.TaskError, Msg: "trap"}}})
	if len(launches(ds)) != 0 {
		t.Fatalf("relaunched at once on the agent it failed on or a full one: %v", ds)
	}
	w, ok := find[Wake](ds)
	if !ok || !w.At.Equal(f.now.Add(2*time.Second)) {
		t.Fatalf("no wake when the filter lapses: %v", ds)
	}
	info, _ := f.c.Job(id)
	if why := info.Stages[0].Why; why == nil || why.Code != ReasonFiltered {
		t.Fatalf("reason %+v", why)
	}
	// When the filter lapses the agent it failed on is offered again and
	// refused again (another agent exists); the other agent, once free,
	// runs it.
	f.now = w.At
	ds = f.apply(Command{Tick: &struct{}{}})
	if len(launches(ds)) != 0 {
		t.Fatalf("ran again on the agent it failed on: %v", ds)
	}
	if _, ok := find[Wake](ds); !ok {
		t.Fatalf("no new filter: %v", ds)
	}
	u := f.c.RunningOn(other)
	ls := launches(f.apply(Command{Status: &Status{Job: u[0].Job, Task: u[0].Task, Attempt: u[0].Attempt, Agent: other}}))
	if len(ls) != 1 || ls[0].Job != id || ls[0].Agent != other || ls[0].Spec.Attempt != 1 {
		t.Fatalf("after the other agent freed: %v", ls)
	}
}

func TestHistoryRetention(t *testing.T) {
	f := newFixture(t, Config{History: History{MaxJobs: 2, MaxAge: time.Hour}})
	f.agent("a1", 4000)
	var ids []string
	for range 3 {
		id := f.submit("t", mapJob(1))
		ids = append(ids, id)
		for _, at := range f.c.RunningOn("a1") {
			f.apply(Command{Status: &Status{Job: at.Job, Task: at.Task, Attempt: at.Attempt, Agent: "a1"}})
		}
		f.apply(Command{Committed: &Committed{Job: id}})
	}
	if _, ok := f.c.Record(ids[0]); ok {
		t.Fatal("kept more than MaxJobs")
	}
	if _, ok := f.c.Record(ids[2]); !ok {
		t.Fatal("lost the newest job")
	}
	f.now = f.now.Add(2 * time.Hour)
	f.apply(Command{Tick: &struct{}{}})
	if js := f.c.Jobs(); len(js) != 0 {
		t.Fatalf("kept jobs past MaxAge: %v", js)
	}
	// Ids are never reused, even with the history gone and restored.
	snap, err := f.c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	f.c, err = Restore(Config{}, snap)
	if err != nil {
		t.Fatal(err)
	}
	if id := f.submit("t", mapJob(1)); id != "job-4" {
		t.Fatalf("new job %s after job-3", id)
	}
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	f := newFixture(t, Config{})
	f.agent("a1", 1000)
	f.submit("t", mapJob(2))
	good, _ := f.c.Snapshot()
	var doc map[string]json.RawMessage
	_ = json.Unmarshal(good, &doc)
	tests := []struct {
		name, snap, want string
	}{
		{"truncated", string(good[:len(good)/2]), "does not decode"},
		{"version", strings.Replace(string(good), `"version":1`, `"version":9`, 1), "snapshot format 9"},
		{"plan", strings.Replace(string(good), `"tasks":[[`, `"tasks":[[],[`, 1), "job job-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Restore(Config{}, []byte(tt.snap))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeCommand(f *testing.F) {
	for _, cmd := range []Command{
		{Tick: &struct{}{}},
		{Submit: &Submit{Request: "r", Tenant: "t", Job: mapJob(2), Task: task}},
		{Status: &Status{Job: "job-1", Task: planner.TaskKey{Stage: 1}, Agent: "a", Failure: &planner.Failure{Kind: planner.FetchFailed}}},
		{AgentUp: &AgentUp{Name: "a", Running: []Attempt{{Job: "job-1"}}}},
	} {
		b, err := cmd.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"tick":{},"cancel":{"job":"x"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := DecodeCommand(b)
		if err != nil {
			return
		}
		// A command that decodes applies without panicking, and encodes
		// back.
		if _, err := cmd.Encode(); err != nil {
			t.Fatalf("decoded %s but cannot encode it: %v", cmd.Kind(), err)
		}
		c, _ := New(Config{})
		c.Apply(Command{AgentUp: &AgentUp{Name: "a", Resources: allocator.Resources{CPU: 4000, Mem: 4096}}})
		c.Apply(cmd)
	})
}

// startMapJob submits a map job of n tasks to an agent with room for two,
// which it launches.
func (f *fixture) startMapJob(n int) []Launch {
	f.t.Helper()
	f.agent("a1", 2000)
	ls := launches(f.apply(Command{Submit: &Submit{Request: "r1", Tenant: "t", Name: "wc", Job: mapJob(n), Task: task}}))
	if len(ls) != 2 {
		f.t.Fatalf("%d launches, want 2", len(ls))
	}
	return ls
}

// TestInlineResultPartsAreKept: a result task that returns its part in its
// status has it kept, through a snapshot, into the job's record; the
// commit marks it inline, and a stale inline attempt asks for no discard.
func TestInlineResultPartsAreKept(t *testing.T) {
	f := newFixture(t, Config{})
	ls := f.startMapJob(2)
	inline := func(l Launch, out string) []Decision {
		return f.apply(Command{Status: &Status{Job: l.Job, Task: l.Spec.Key, Attempt: l.Spec.Attempt, Agent: l.Agent, RecordsOut: 1, Inline: true, Output: []byte(out)}})
	}
	inline(ls[0], "w0\t1\n")
	// A duplicate report of the same attempt is stale; its part is not a
	// file, so nothing is discarded.
	if _, ok := find[Discard](inline(ls[0], "other\n")); ok {
		t.Error("a stale inline attempt asked for a file to be discarded")
	}
	snap, err := f.c.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if f.c, err = Restore(Config{}, snap); err != nil {
		t.Fatal(err)
	}
	ds := f.succeed(ls[1]) // a part in a file
	cm, ok := find[Commit](ds)
	if !ok || fmt.Sprint(cm.Inline) != "[true false]" {
		t.Fatalf("commit %+v, want parts [inline, file]", cm)
	}
	f.apply(Command{Committed: &Committed{Job: cm.Job, Output: "results:r1"}})
	r, _ := f.c.Record(cm.Job)
	if got, ok := r.Inline[0]; !ok || string(got) != "w0\t1\n" {
		t.Errorf("record's inline part 0 = %q, want the first report's", got)
	}
	if _, ok := r.Inline[1]; ok {
		t.Error("the part written to a file is in the record too")
	}
}

// TestStatusesApplyTogether: reports applied as one Statuses command end
// their attempts in order and refill the freed slots in one offer cycle;
// the command survives its encoding.
func TestStatusesApplyTogether(t *testing.T) {
	f := newFixture(t, Config{})
	ls := f.startMapJob(4)
	var sts []Status
	for _, l := range ls {
		sts = append(sts, Status{Job: l.Job, Task: l.Spec.Key, Attempt: l.Spec.Attempt, Agent: l.Agent, RecordsOut: 1, RecordsIn: 1})
	}
	cmd := Command{Time: f.now, Statuses: sts}
	b, err := cmd.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if cmd, err = DecodeCommand(b); err != nil || cmd.Kind() != "statuses" {
		t.Fatalf("decoded %q, %v", cmd.Kind(), err)
	}
	ds := f.apply(cmd)
	next := launches(ds)
	if len(next) != 2 || next[0].Spec.Key.Partition != 2 || next[1].Spec.Key.Partition != 3 {
		t.Fatalf("launches after both reports: %v, want tasks 2 and 3", next)
	}
	_, counters, _ := f.c.Progress(ls[0].Job)
	if counters.RecordsIn != 2 {
		t.Errorf("records in %d after two reports, want 2", counters.RecordsIn)
	}
	if _, err := DecodeCommand([]byte(`{"statuses":[{}],"tick":{}}`)); err == nil {
		t.Error("a command of statuses and a tick was accepted")
	}
}
