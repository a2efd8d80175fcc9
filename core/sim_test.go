package core

import (
	"encoding/json"
	"flag"
	"fmt"
	"hash/fnv"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/planner"
)

// The simulation drives three replicas of the core through one log of
// commands that a seeded random world produces: jobs submitted and
// canceled, attempts that succeed, fail, fail to fetch or are lost,
// statuses delivered late, twice or never, agents that die, come back or
// are declared lost, leader changes (agents register again with what they
// run, pending statuses are dropped) and replicas restarted from a
// snapshot and the log after it. After every command it checks the
// invariants, and that every replica decided the same; at the end, with
// the faults stopped, every job must end.

var (
	simSeeds = flag.Int("sim.seeds", 0, "seeds for TestSimulation (default 2000, 200 under -race, or $WASMGRID_SIM_SEEDS)")
	simSeed  = flag.Uint64("sim.seed", 0, "run TestSimulation with this one seed")
)

func TestSimulation(t *testing.T) {
	if *simSeed != 0 {
		runSim(t, *simSeed, true)
		return
	}
	n := 2000
	if raceEnabled {
		n = 200
	}
	if v, err := strconv.Atoi(os.Getenv("WASMGRID_SIM_SEEDS")); err == nil {
		n = v
	}
	if *simSeeds > 0 {
		n = *simSeeds
	}
	if testing.Short() {
		n = min(n, 50)
	}
	stats := simStats{}
	for seed := uint64(1); seed <= uint64(n); seed++ {
		s := runSim(t, seed, false)
		if t.Failed() {
			t.Fatalf("seed %d failed: rerun with go test ./core -run TestSimulation -sim.seed %d -v", seed, seed)
		}
		stats.add(s)
	}
	t.Logf("%d seeds: %+v", n, stats)
}

// TestSimulationIsDeterministic runs seeds twice: the same seed gives the
// same trace.
func TestSimulationIsDeterministic(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		a, b := runSim(t, seed, false), runSim(t, seed, false)
		if a.trace != b.trace || a.commands != b.commands {
			t.Fatalf("seed %d: traces differ: %x (%d commands) and %x (%d commands)", seed, a.trace, a.commands, b.trace, b.commands)
		}
	}
}

type simStats struct {
	trace                                 uint64
	commands, jobs, succeeded, failed     int
	canceled, launches, leaderChanges     int
	restarts, agentsLost, staleDeliveries int
}

func (s *simStats) add(o simStats) {
	s.commands += o.commands
	s.jobs += o.jobs
	s.succeeded += o.succeeded
	s.failed += o.failed
	s.canceled += o.canceled
	s.launches += o.launches
	s.leaderChanges += o.leaderChanges
	s.restarts += o.restarts
	s.agentsLost += o.agentsLost
	s.staleDeliveries += o.staleDeliveries
}

type simAgent struct {
	name  string
	res   allocator.Resources
	alive bool
	// running maps an attempt to its launch.
	running map[Attempt]Launch
}

type simCommit struct {
	Commit
	due time.Time
}

type snapAt struct {
	index int
	bytes []byte
}

type sim struct {
	t        testing.TB
	seed     uint64
	verbose  bool
	rng      *rand.Rand
	now      time.Time
	cfg      Config
	log      [][]byte
	replicas []*Core
	leader   int
	snaps    []snapAt
	agents   []*simAgent
	net      []Status // statuses in flight to the coordinator
	commits  []simCommit
	wake     time.Time
	stats    simStats
	trace    interface{ Write([]byte) (int, error) }
	hash     func() uint64

	canceled  map[string]bool
	committed map[string][]int
	ended     map[string]bool
	accepted  map[string]string
	requests  int
}

func runSim(t testing.TB, seed uint64, verbose bool) simStats {
	h := fnv.New64a()
	s := &sim{
		t: t, seed: seed, verbose: verbose,
		rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		now:   time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC),
		cfg:   Config{Tenants: []Tenant{{Name: "a", Tenant: allocator.Tenant{Weight: 1}}, {Name: "b", Tenant: allocator.Tenant{Weight: 2, Limit: allocator.Resources{CPU: 3000}}}}, History: History{MaxJobs: 6}},
		trace: h, hash: h.Sum64,
		canceled: map[string]bool{}, committed: map[string][]int{}, ended: map[string]bool{}, accepted: map[string]string{},
	}
	for range 3 {
		c, err := New(s.cfg)
		if err != nil {
			t.Fatal(err)
		}
		s.replicas = append(s.replicas, c)
	}
	for i := range 2 + s.rng.IntN(3) {
		ag := &simAgent{name: fmt.Sprintf("agent-%d", i), res: allocator.Resources{CPU: int64(2000 + 1000*s.rng.IntN(3)), Mem: 2048, Disk: 10000}, alive: true, running: map[Attempt]Launch{}}
		s.agents = append(s.agents, ag)
		s.apply(Command{AgentUp: &AgentUp{Name: ag.name, Resources: ag.res, BlockAddr: ag.name + ":7000"}})
	}
	steps := 150 + s.rng.IntN(150)
	for range steps {
		s.step(true)
		if t.Failed() {
			return s.stats
		}
	}
	// The faults stop: every agent comes back, and every job must end.
	for _, ag := range s.agents {
		if !ag.alive || s.leaderCore().st.Agents[ag.name] == nil || s.leaderCore().st.Agents[ag.name].Suspect {
			ag.alive = true
			s.apply(Command{AgentUp: &AgentUp{Name: ag.name, Resources: ag.res, BlockAddr: ag.name + ":7000", Running: slices.SortedFunc(maps.Keys(ag.running), cmpAttempt)}})
		}
	}
	for i := 0; len(s.leaderCore().st.Jobs) > 0; i++ {
		if i > 5000 {
			for _, j := range s.leaderCore().jobs() {
				t.Errorf("seed %d: job %s did not end: phase %s, err %q, running %v, runnable %d", seed, j.ID, j.Phase, j.Err, j.Running, j.sched.Runnable())
			}
			return s.stats
		}
		s.step(false)
		if t.Failed() {
			return s.stats
		}
	}
	s.stats.trace = s.hash()
	return s.stats
}

func (s *sim) leaderCore() *Core { return s.replicas[s.leader] }

func (s *sim) logf(format string, args ...any) {
	if s.verbose {
		s.t.Logf(format, args...)
	}
}

// apply appends cmd to the log, applies it on every replica, checks that
// they decided the same and the invariants, and carries out the leader's
// decisions.
func (s *sim) apply(cmd Command) {
	cmd.Time = s.now
	b, err := cmd.Encode()
	if err != nil {
		s.t.Fatalf("seed %d: encode %s: %v", s.seed, cmd.Kind(), err)
	}
	dec, err := DecodeCommand(b)
	if err != nil {
		s.t.Fatalf("seed %d: decode %s: %v", s.seed, cmd.Kind(), err)
	}
	s.log = append(s.log, b)
	s.stats.commands++
	_, _ = s.trace.Write(b)
	var first []Decision
	for i, c := range s.replicas {
		ds := c.Apply(dec)
		if i == 0 {
			first = ds
		} else if describe(ds) != describe(first) {
			s.t.Fatalf("seed %d: after command %d (%s), replica %d decided\n%v\nreplica 0 decided\n%v", s.seed, len(s.log), cmd.Kind(), i, ds, first)
		}
	}
	desc := describe(first)
	s.logf("%d %s %s -> %s", len(s.log), s.now.Format("15:04:05.000"), b, desc)
	_, _ = s.trace.Write([]byte(desc))
	s.check()
	for _, d := range first {
		s.carry(d)
	}
	if len(s.log)%25 == 0 {
		snap, err := s.leaderCore().Snapshot()
		if err != nil {
			s.t.Fatal(err)
		}
		s.snaps = append(s.snaps, snapAt{len(s.log), snap})
	}
}

// describe writes decisions down without pointers, to compare and trace
// them.
func describe(ds []Decision) string {
	var b strings.Builder
	for _, d := range ds {
		switch d := d.(type) {
		case Launch:
			fmt.Fprintf(&b, "launch %s %s %s#%d %v;", d.Job, d.Agent, d.Spec.Key, d.Spec.Attempt, d.BlockServers)
		default:
			fmt.Fprintf(&b, "%T%+v;", d, d)
		}
	}
	return b.String()
}

// carry does what the leader decided, as its shell would.
func (s *sim) carry(d Decision) {
	c := s.leaderCore()
	switch d := d.(type) {
	case Accepted:
		s.accepted[d.Request] = d.Job
		s.stats.jobs++
	case Launch:
		s.stats.launches++
		if s.canceled[d.Job] {
			s.t.Errorf("seed %d: launched %s attempt %d of canceled job %s", s.seed, d.Spec.Key, d.Spec.Attempt, d.Job)
		}
		if ag := c.st.Agents[d.Agent]; ag == nil || ag.Suspect {
			s.t.Errorf("seed %d: launched on agent %s, which is not registered or suspect", s.seed, d.Agent)
		}
		if ag := s.agent(d.Agent); ag.alive {
			ag.running[Attempt{Job: d.Job, Task: d.Spec.Key, Attempt: d.Spec.Attempt}] = d
		}
	case Kill:
		ag := s.agent(d.Agent)
		for _, at := range d.Attempts {
			delete(ag.running, at)
		}
	case RemoveJob:
		for _, name := range d.Agents {
			maps.DeleteFunc(s.agent(name).running, func(at Attempt, _ Launch) bool { return at.Job == d.Job })
		}
	case Commit:
		if prev, ok := s.committed[d.Job]; ok && !slices.Equal(prev, d.Parts) {
			s.t.Errorf("seed %d: job %s committed parts %v, then %v", s.seed, d.Job, prev, d.Parts)
		}
		if d.Err == "" {
			s.committed[d.Job] = d.Parts
		}
		if !slices.ContainsFunc(s.commits, func(x simCommit) bool { return x.Job == d.Job }) {
			s.commits = append(s.commits, simCommit{d, s.now.Add(time.Duration(s.rng.IntN(500)) * time.Millisecond)})
		}
	case Discard:
		if parts, ok := s.committed[d.Job]; ok && parts[d.Partition] == d.Attempt {
			s.t.Errorf("seed %d: job %s: discarded the committed attempt %d of partition %d", s.seed, d.Job, d.Attempt, d.Partition)
		}
	case Ended:
		if s.ended[d.Job] {
			s.t.Errorf("seed %d: job %s ended twice", s.seed, d.Job)
		}
		s.ended[d.Job] = true
		r, _ := c.Record(d.Job)
		switch r.State {
		case Succeeded:
			s.stats.succeeded++
		case Canceled:
			s.stats.canceled++
		default:
			s.stats.failed++
		}
	case Wake:
		s.wake = d.At
	}
}

func (s *sim) agent(name string) *simAgent {
	for _, ag := range s.agents {
		if ag.name == name {
			return ag
		}
	}
	s.t.Fatalf("seed %d: no agent %s", s.seed, name)
	return nil
}

// step makes one thing happen.
func (s *sim) step(faults bool) {
	s.now = s.now.Add(time.Duration(1+s.rng.IntN(200)) * time.Millisecond)
	r := s.rng.IntN(100)
	switch {
	case faults && r < 6 && s.requests < 12:
		s.submit()
	case r < 40:
		s.finishAttempt(faults)
	case r < 60:
		s.deliver(faults)
	case r < 70:
		s.commit(faults)
	case r < 80:
		if !s.wake.IsZero() && !s.now.Before(s.wake) {
			s.wake = time.Time{}
			s.apply(Command{Tick: &struct{}{}})
		}
	case !faults:
		s.now = s.now.Add(time.Second)
		if !s.wake.IsZero() {
			s.wake = time.Time{}
			s.apply(Command{Tick: &struct{}{}})
		}
	case r < 81:
		s.cancel()
	case r < 87:
		s.agentFault()
	case r < 89:
		s.leaderChange()
	case r < 92:
		s.restartReplica()
	}
}

// jobTemplates are the shapes of the simulated jobs.
func (s *sim) job() planner.Job {
	splits := func(n int) []planner.Split {
		var out []planner.Split
		for i := range n {
			out = append(out, planner.Split{Generate: true, Offset: int64(i * 10), Length: 10})
		}
		return out
	}
	m := planner.FuncRef{Module: "m", Function: "f"}
	n, p := 1+s.rng.IntN(6), 1+s.rng.IntN(4)
	switch s.rng.IntN(4) {
	case 0:
		return planner.Job{Datasets: []planner.Dataset{{ID: 0, Op: planner.OpSource}, {ID: 1, Op: planner.OpMap, Parents: []int{0}, Func: m}}, Splits: splits(n)}
	case 1:
		return planner.Job{Datasets: []planner.Dataset{{ID: 0, Op: planner.OpSource}, {ID: 1, Op: planner.OpReduceByKey, Parents: []int{0}, Func: m, Partitions: p}}, Splits: splits(n)}
	case 2:
		return planner.Job{Datasets: []planner.Dataset{{ID: 0, Op: planner.OpSource}, {ID: 1, Op: planner.OpReduceByKey, Parents: []int{0}, Func: m, Partitions: p}, {ID: 2, Op: planner.OpSortByKey, Parents: []int{1}, Partitions: 1 + s.rng.IntN(3)}}, Splits: splits(n)}
	default:
		return planner.Job{Datasets: []planner.Dataset{{ID: 0, Op: planner.OpSource, Splits: splits(n)}, {ID: 1, Op: planner.OpSource, Splits: splits(1 + s.rng.IntN(3))}, {ID: 2, Op: planner.OpJoin, Parents: []int{0, 1}, Partitions: p}}}
	}
}

func (s *sim) submit() {
	s.requests++
	tenant := []string{"a", "b", "c"}[s.rng.IntN(3)]
	s.apply(Command{Submit: &Submit{Request: fmt.Sprintf("r%d", s.requests), Tenant: tenant, Name: "sim", Job: s.job(), MaxAttempts: 3,
		Task: allocator.Resources{CPU: 1000, Mem: int64(256 * (1 + s.rng.IntN(3)))}, Payload: json.RawMessage(`{"n":1}`)}})
}

// finishAttempt ends an attempt that an agent runs: its status goes into
// the network.
func (s *sim) finishAttempt(faults bool) {
	var live []*simAgent
	for _, ag := range s.agents {
		if ag.alive && len(ag.running) > 0 {
			live = append(live, ag)
		}
	}
	if len(live) == 0 {
		return
	}
	ag := live[s.rng.IntN(len(live))]
	ats := slices.SortedFunc(maps.Keys(ag.running), func(x, y Attempt) int {
		return cmpAttempt(x, y)
	})
	at := ats[s.rng.IntN(len(ats))]
	l := ag.running[at]
	delete(ag.running, at)
	st := Status{Job: at.Job, Task: at.Task, Attempt: at.Attempt, Agent: ag.name, Elapsed: 10 * time.Millisecond, RecordsIn: 10, RecordsOut: 5, BytesIn: 100}
	r := s.rng.IntN(100)
	switch {
	case !faults || r < 80:
		if l.Spec.Stage.Sample != nil {
			for range 4 {
				st.Samples = append(st.Samples, []byte{byte('a' + s.rng.IntN(26))})
			}
		}
	case r < 90:
		st.Failure, st.Err = &planner.Failure{Kind: planner.TaskError, Msg: "trap"}, "trap"
	case r < 97 && len(l.Spec.Inputs) > 0:
		in := l.Spec.Inputs[s.rng.IntN(len(l.Spec.Inputs))]
		st.Failure = &planner.Failure{Kind: planner.FetchFailed, Msg: "missing block", ShuffleID: l.Spec.Stage.ShuffleIn.ID, MapIndex: in.MapIndex, MapAttempt: in.Attempt, Corrupt: s.rng.IntN(2) == 0}
	case r < 98:
		st.Failure = &planner.Failure{Kind: planner.Fatal, Msg: "bad module"}
	}
	s.net = append(s.net, st)
}

func cmpAttempt(x, y Attempt) int {
	if x.Job != y.Job {
		return jobCmp(x.Job, y.Job)
	}
	if x.Task.Stage != y.Task.Stage {
		return x.Task.Stage - y.Task.Stage
	}
	if x.Task.Partition != y.Task.Partition {
		return x.Task.Partition - y.Task.Partition
	}
	return x.Attempt - y.Attempt
}

func jobCmp(a, b string) int {
	x, y := jobSeq(a), jobSeq(b)
	switch {
	case x < y:
		return -1
	case x > y:
		return 1
	}
	return 0
}

// deliver hands a status in flight to the coordinator; with faults it
// may be delivered again later.
func (s *sim) deliver(faults bool) {
	if len(s.net) == 0 {
		return
	}
	i := s.rng.IntN(len(s.net))
	st := s.net[i]
	if !faults || s.rng.IntN(10) > 0 {
		s.net = slices.Delete(s.net, i, i+1)
	} else {
		s.stats.staleDeliveries++
	}
	s.apply(Command{Status: &st})
}

// commit completes a commit the shell started.
func (s *sim) commit(faults bool) {
	for i, cm := range s.commits {
		if s.now.Before(cm.due) {
			continue
		}
		s.commits = slices.Delete(s.commits, i, i+1)
		c := Committed{Job: cm.Job, Output: "out/" + cm.Job}
		if faults && cm.Err == "" && s.rng.IntN(20) == 0 {
			c.Err = "commit: disk full"
		}
		s.apply(Command{Committed: &c})
		return
	}
}

func (s *sim) cancel() {
	js := s.leaderCore().jobs()
	if len(js) == 0 {
		return
	}
	j := js[s.rng.IntN(len(js))]
	if j.Phase == Running {
		s.canceled[j.ID] = true
	}
	s.apply(Command{Cancel: &Cancel{Job: j.ID, Reason: "by the simulation"}})
}

// agentFault kills an agent (suspect, then lost), or brings a dead one
// back before or after it was declared lost.
func (s *sim) agentFault() {
	ag := s.agents[s.rng.IntN(len(s.agents))]
	c := s.leaderCore()
	switch {
	case ag.alive:
		alive := 0
		for _, x := range s.agents {
			if x.alive {
				alive++
			}
		}
		if alive == 1 {
			return
		}
		ag.alive = false
		clear(ag.running)
		s.apply(Command{Suspect: &AgentName{Name: ag.name}})
	case c.st.Agents[ag.name] != nil && s.rng.IntN(2) == 0:
		s.stats.agentsLost++
		s.apply(Command{AgentLost: &AgentName{Name: ag.name}})
	default:
		ag.alive = true
		s.apply(Command{AgentUp: &AgentUp{Name: ag.name, Resources: ag.res, BlockAddr: ag.name + ":7000"}})
	}
}

// leaderChange makes another replica the leader: statuses in flight may
// be lost with the old leader, agents register again with what they run,
// and the new leader commits again what was being committed.
func (s *sim) leaderChange() {
	s.stats.leaderChanges++
	s.leader = (s.leader + 1 + s.rng.IntN(len(s.replicas)-1)) % len(s.replicas)
	s.net = slices.DeleteFunc(s.net, func(Status) bool { return s.rng.IntN(2) == 0 })
	s.commits = nil
	for _, ag := range s.agents {
		if !ag.alive {
			continue
		}
		s.apply(Command{AgentUp: &AgentUp{Name: ag.name, Resources: ag.res, BlockAddr: ag.name + ":7000", Running: slices.SortedFunc(maps.Keys(ag.running), cmpAttempt)}})
	}
	for _, cm := range s.leaderCore().Committing() {
		s.carry(cm)
	}
}

// restartReplica replaces a follower by one restored from the latest
// snapshot and the log after it; it must hold what the leader holds.
func (s *sim) restartReplica() {
	if len(s.snaps) == 0 {
		return
	}
	s.stats.restarts++
	i := (s.leader + 1) % len(s.replicas)
	snap := s.snaps[len(s.snaps)-1]
	c, err := Restore(s.cfg, snap.bytes)
	if err != nil {
		s.t.Fatalf("seed %d: restore: %v", s.seed, err)
	}
	for _, b := range s.log[snap.index:] {
		cmd, err := DecodeCommand(b)
		if err != nil {
			s.t.Fatal(err)
		}
		c.Apply(cmd)
	}
	want, _ := s.leaderCore().Snapshot()
	got, _ := c.Snapshot()
	if string(got) != string(want) {
		s.t.Fatalf("seed %d: a replica restored from the snapshot at %d and the log after it differs from the leader:\n%s\nleader:\n%s", s.seed, snap.index, got, want)
	}
	s.replicas[i] = c
}

// check verifies the invariants on the leader's state.
func (s *sim) check() {
	c := s.leaderCore()
	running := map[string]int{}
	perAgent := map[string]allocator.Resources{}
	for _, j := range c.jobs() {
		st := j.sched.State()
		n := 0
		for sid, row := range st.Tasks {
			for p, t := range row {
				if t.State != 1 {
					continue
				}
				n++
				r := j.Running[planner.TaskKey{Stage: sid, Partition: p}.String()]
				if j.Phase == Running && j.Err == "" && (r == nil || r.Attempt != t.Attempt || r.Agent != t.Agent) {
					s.t.Errorf("seed %d: job %s task %d.%d runs attempt %d on %s in the scheduler, the core has %+v", s.seed, j.ID, sid, p, t.Attempt, t.Agent, r)
				}
			}
		}
		if j.Phase == Running && j.Err == "" && n != len(j.Running) {
			s.t.Errorf("seed %d: job %s: %d attempts run in the scheduler, %d in the core", s.seed, j.ID, n, len(j.Running))
		}
		if (j.Phase != Running || j.Err != "") && len(j.Running) > 0 {
			s.t.Errorf("seed %d: job %s (%s, err %q) still holds %d attempts", s.seed, j.ID, j.Phase, j.Err, len(j.Running))
		}
		for _, r := range j.Running {
			running[j.Tenant]++
			perAgent[r.Agent] = perAgent[r.Agent].Add(j.Task)
			if c.st.Agents[r.Agent] == nil {
				s.t.Errorf("seed %d: job %s runs an attempt on %s, which is not registered", s.seed, j.ID, r.Agent)
			}
		}
	}
	for name, used := range perAgent {
		if ag := c.st.Agents[name]; ag != nil && !ag.Resources.Contains(used) {
			s.t.Errorf("seed %d: agent %s holds %s of attempts, more than its %s", s.seed, name, used, ag.Resources)
		}
	}
	for tenant, u := range c.st.Usage {
		if u.Running != running[tenant] {
			s.t.Errorf("seed %d: tenant %s: usage counts %d attempts, %d run", s.seed, tenant, u.Running, running[tenant])
		}
	}
}
