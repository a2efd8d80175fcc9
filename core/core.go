package core

import (
	"cmp"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/planner"
)

// Config configures a Core. Every server of a replicated coordinator must
// use the same one: it shapes decisions.
type Config struct {
	// Tenants are the configured tenants with their weights and quotas,
	// in the order that breaks ties between equal shares. A job of a
	// tenant not listed joins one with weight 1 and no quota.
	Tenants []Tenant
	// RefuseFor is how long a job is not offered an agent it could not
	// use (its only runnable tasks last failed there), as Mesos'
	// refuse_seconds (default 1s).
	RefuseFor time.Duration
	// MaxTaskLogs bounds the attempt logs kept per running job (default
	// 5000, newest kept).
	MaxTaskLogs int
	// History bounds what is kept of finished jobs.
	History History
}

// Tenant is a configured tenant.
type Tenant struct {
	Name string
	allocator.Tenant
}

// History bounds the records of finished jobs: the oldest go first when
// there are more than MaxJobs, and any older than MaxAge (measured from
// the end of the job) go.
type History struct {
	MaxJobs     int           // default 1000
	MaxAge      time.Duration // default 7 days
	MaxTaskLogs int           // attempt logs kept per finished job, default 1000
}

// DefaultHistory is the history kept when Config leaves it zero.
var DefaultHistory = History{MaxJobs: 1000, MaxAge: 7 * 24 * time.Hour, MaxTaskLogs: 1000}

func (cfg Config) withDefaults() Config {
	if cfg.RefuseFor <= 0 {
		cfg.RefuseFor = time.Second
	}
	if cfg.MaxTaskLogs <= 0 {
		cfg.MaxTaskLogs = 5000
	}
	if cfg.History.MaxJobs <= 0 {
		cfg.History.MaxJobs = DefaultHistory.MaxJobs
	}
	if cfg.History.MaxAge <= 0 {
		cfg.History.MaxAge = DefaultHistory.MaxAge
	}
	if cfg.History.MaxTaskLogs <= 0 {
		cfg.History.MaxTaskLogs = DefaultHistory.MaxTaskLogs
	}
	cfg.Tenants = slices.Clone(cfg.Tenants)
	return cfg
}

// Core is the coordinator's state machine. It is not safe for concurrent
// use: one goroutine applies commands and answers queries.
type Core struct {
	cfg Config
	st  state
	// names are the agents' names, sorted; nil when an agent came or
	// went since. Derived from st, never in a snapshot.
	names []string
}

// state is everything a snapshot holds.
type state struct {
	Now     time.Time         `json:"now"`
	NextJob uint64            `json:"next_job"`
	Agents  map[string]*Agent `json:"agents"`
	Lost    []string          `json:"lost,omitempty"`
	Jobs    map[string]*Job   `json:"jobs"`
	History []*Record         `json:"history"` // oldest first
	Usage   map[string]*Usage `json:"usage"`
}

// Agent is a registered agent.
type Agent struct {
	Name      string              `json:"name"`
	Resources allocator.Resources `json:"resources"`
	BlockAddr string              `json:"block_addr"`
	Joined    time.Time           `json:"joined"`
	// Suspect: gone from gossip or its control connection; offered no
	// more until it registers again or is declared lost.
	Suspect bool `json:"suspect,omitempty"`
}

// Usage integrates a tenant's running attempts over time.
type Usage struct {
	Seconds float64   `json:"seconds"` // up to Since
	Running int       `json:"running"`
	Since   time.Time `json:"since"`
}

// Phases of a job.
const (
	Running    = "running"
	Committing = "committing"
)

// Job is a job that has not ended.
type Job struct {
	ID          string              `json:"id"`
	Seq         uint64              `json:"seq"`
	Tenant      string              `json:"tenant"`
	Name        string              `json:"name"`
	Submitted   time.Time           `json:"submitted"`
	Logical     planner.Job         `json:"logical"`
	MaxAttempts int                 `json:"max_attempts,omitempty"`
	Task        allocator.Resources `json:"task"`
	Payload     json.RawMessage     `json:"payload,omitempty"`
	Phase       string              `json:"phase"`
	Err         string              `json:"err,omitempty"`
	Canceled    bool                `json:"canceled,omitempty"`
	// Sched is the scheduler's state, filled only in snapshots.
	Sched planner.SchedulerState `json:"sched"`
	// Running are the attempts in flight, by task ("stage.partition").
	Running map[string]*Launched `json:"running"`
	// Filters keep agents out of the job's offers until a time.
	Filters    map[string]time.Time `json:"filters,omitempty"`
	Suppressed bool                 `json:"suppressed,omitempty"`
	Counters
	Logs       []TaskLog       `json:"logs,omitempty"`
	RoundTrips []time.Duration `json:"round_trips,omitempty"` // the newest maxRoundTrips
	// StartDelays are the times from an attempt's launch to its guest's
	// start, of the newest maxRoundTrips attempts that reported one.
	StartDelays []time.Duration `json:"start_delays,omitempty"`
	// Inline holds the parts of the result partitions whose winning
	// attempt returned its part in its status (Status.Inline).
	Inline map[int][]byte `json:"inline,omitempty"`

	plan  *planner.Plan
	sched *planner.Scheduler
}

// Launched is an attempt in flight.
type Launched struct {
	Attempt  int       `json:"attempt"`
	Agent    string    `json:"agent"`
	Launched time.Time `json:"launched"`
}

// Counters are a job's totals.
type Counters struct {
	RecordsIn      int64 `json:"records_in"`
	RecordsOut     int64 `json:"records_out"`
	BytesIn        int64 `json:"bytes_in"`
	Attempts       int   `json:"attempts"`
	FailedAttempts int   `json:"failed_attempts"`
	PeakRSS        int64 `json:"executor_peak_rss"`
}

// TaskLog is how one task attempt ended.
type TaskLog struct {
	Time    time.Time     `json:"time"`
	Task    string        `json:"task"` // stage.partition
	Attempt int           `json:"attempt"`
	Agent   string        `json:"agent"`
	Outcome string        `json:"outcome"` // succeeded, failed, lost, fetch_failed, fatal, stale, killed
	Elapsed time.Duration `json:"elapsed_ns"`
	Error   string        `json:"error,omitempty"`
	Log     string        `json:"log,omitempty"`
	// Launched is when the coordinator launched the attempt; Started when
	// its guest code began, on the agent's clock (zero if not reported).
	Launched time.Time `json:"launched,omitzero"`
	Started  time.Time `json:"started,omitzero"`
}

// maxRoundTrips bounds the launch-to-report times kept per job for its
// percentiles.
const maxRoundTrips = 4096

// New returns a Core with no agents and no jobs.
func New(cfg Config) (*Core, error) {
	cfg = cfg.withDefaults()
	seen := map[string]bool{}
	for _, t := range cfg.Tenants {
		if t.Name == "" || seen[t.Name] {
			return nil, fmt.Errorf("core: tenant %q is empty or listed twice", t.Name)
		}
		seen[t.Name] = true
		if err := allocator.New().AddTenant(t.Name, t.Tenant); err != nil {
			return nil, fmt.Errorf("core: %w", err)
		}
	}
	return &Core{cfg: cfg, st: state{
		Agents: map[string]*Agent{},
		Jobs:   map[string]*Job{},
		Usage:  map[string]*Usage{},
	}}, nil
}

// Now is the core's clock: the latest time of the commands applied.
func (c *Core) Now() time.Time { return c.st.Now }

// Apply applies one command and returns what the shell must do.
func (c *Core) Apply(cmd Command) []Decision {
	if t := cmd.Time.Round(0).UTC(); t.After(c.st.Now) {
		c.st.Now = t
	}
	a := &applier{Core: c}
	switch {
	case cmd.Submit != nil:
		a.submit(cmd.Submit)
	case cmd.AgentUp != nil:
		a.agentUp(cmd.AgentUp)
	case cmd.Suspect != nil:
		if ag := c.st.Agents[cmd.Suspect.Name]; ag != nil {
			ag.Suspect = true
		}
	case cmd.AgentLost != nil:
		a.agentLost(cmd.AgentLost.Name)
	case cmd.Status != nil:
		a.status(cmd.Status)
	case len(cmd.Statuses) > 0:
		for i := range cmd.Statuses {
			a.status(&cmd.Statuses[i])
		}
	case cmd.Cancel != nil:
		if j := c.st.Jobs[cmd.Cancel.Job]; j != nil && j.Phase == Running {
			reason := "canceled"
			if cmd.Cancel.Reason != "" {
				reason = "canceled: " + cmd.Cancel.Reason
			}
			j.Canceled = true
			a.fail(j, reason)
		}
	case cmd.Committed != nil:
		a.committed(cmd.Committed)
	}
	a.schedule()
	c.prune()
	return a.out
}

// applier carries one Apply's decisions.
type applier struct {
	*Core
	out []Decision
}

func (a *applier) emit(d Decision) { a.out = append(a.out, d) }

// jobs returns the jobs that have not ended, in submission order.
func (c *Core) jobs() []*Job {
	js := slices.Collect(maps.Values(c.st.Jobs))
	slices.SortFunc(js, func(x, y *Job) int { return cmp.Compare(x.Seq, y.Seq) })
	return js
}

// agentNames returns the agents' names, sorted; the caller must not
// change the slice.
func (c *Core) agentNames() []string {
	if c.names == nil {
		c.names = slices.Sorted(maps.Keys(c.st.Agents))
	}
	return c.names
}

func (a *applier) submit(s *Submit) {
	c := a.Core
	c.st.NextJob++
	id := "job-" + strconv.FormatUint(c.st.NextJob, 10)
	plan, err := buildPlan(s.Job)
	if err == nil && plan.Tasks() > maxTasks {
		err = fmt.Errorf("the plan has %d tasks, more than the %d a job may have", plan.Tasks(), maxTasks)
	}
	if err != nil {
		a.emit(Refused{Request: s.Request, Err: err.Error()})
		return
	}
	tenant := s.Tenant
	if tenant == "" {
		tenant = "default"
	}
	j := &Job{
		ID: id, Seq: c.st.NextJob, Tenant: tenant, Name: s.Name, Submitted: c.st.Now,
		Logical: s.Job, MaxAttempts: s.MaxAttempts, Task: s.Task, Payload: s.Payload,
		Phase: Running, Running: map[string]*Launched{}, plan: plan,
		sched: planner.NewScheduler(plan, planner.Config{MaxAttempts: s.MaxAttempts}),
	}
	c.st.Jobs[id] = j
	a.emit(Accepted{Request: s.Request, Job: id})
	a.emit(Changed{Job: id})
}

func (a *applier) agentUp(up *AgentUp) {
	c := a.Core
	ag := c.st.Agents[up.Name]
	if ag == nil {
		ag = &Agent{Name: up.Name, Joined: c.st.Now}
		c.st.Agents[up.Name] = ag
		c.names = nil
	}
	ag.Resources, ag.BlockAddr, ag.Suspect = up.Resources, up.BlockAddr, false
	c.st.Lost = slices.DeleteFunc(c.st.Lost, func(n string) bool { return n == up.Name })

	// Reconcile: adopt what the agent runs that the core placed there,
	// kill the rest, and lose what the core placed there that it lacks.
	reported := map[Attempt]bool{}
	var kill []Attempt
	for _, at := range up.Running {
		reported[at] = true
		j := c.st.Jobs[at.Job]
		if j == nil || j.Phase != Running {
			kill = append(kill, at)
			continue
		}
		if r := j.Running[at.Task.String()]; r == nil || r.Attempt != at.Attempt || r.Agent != up.Name {
			kill = append(kill, at)
		}
	}
	if len(kill) > 0 {
		a.emit(Kill{Agent: up.Name, Attempts: kill})
	}
	for _, j := range c.jobs() {
		for _, key := range slices.Sorted(maps.Keys(j.Running)) {
			r := j.Running[key]
			at := Attempt{Job: j.ID, Task: parseKey(key), Attempt: r.Attempt}
			if r.Agent == up.Name && !reported[at] {
				a.ended(j, at.Task, r, "lost", planner.Failure{Kind: planner.Lost, Msg: "agent " + up.Name + " registered again without it"}, 0)
			}
		}
		a.checkFailed(j)
	}
}

func (a *applier) agentLost(name string) {
	c := a.Core
	ag, ok := c.st.Agents[name]
	if !ok {
		return
	}
	delete(c.st.Agents, name)
	c.names = nil
	if !slices.Contains(c.st.Lost, name) {
		c.st.Lost = append(c.st.Lost, name)
	}
	for _, j := range c.jobs() {
		if j.Phase != Running {
			continue
		}
		for _, t := range j.sched.AgentLost(name) {
			r := j.Running[t.Key.String()]
			if r == nil {
				continue // an invariant says this cannot be
			}
			a.ended(j, t.Key, r, "lost", planner.Failure{Kind: planner.Lost, Msg: "agent " + name + " was lost"}, 0)
		}
		a.checkFailed(j)
		a.emit(Changed{Job: j.ID})
	}
	a.emit(PeerLost{Agent: name, BlockAddr: ag.BlockAddr})
}

// ended takes an attempt out of the running set and records its outcome
// with the scheduler (f.Kind zero: it succeeded).
func (a *applier) ended(j *Job, key planner.TaskKey, r *Launched, outcome string, f planner.Failure, elapsed time.Duration) {
	c := a.Core
	delete(j.Running, key.String())
	c.use(j.Tenant, -1)
	if f.Kind != 0 {
		j.sched.Failed(key, r.Attempt, f)
		if f.Kind != planner.Lost {
			j.FailedAttempts++
		}
	}
	c.logAttempt(j, TaskLog{Task: key.String(), Attempt: r.Attempt, Agent: r.Agent, Outcome: outcome, Elapsed: elapsed, Error: f.Msg, Launched: r.Launched})
	a.emit(AttemptEnded{Job: j.ID, Agent: r.Agent, Outcome: outcome, Err: f.Msg, Task: key, Attempt: r.Attempt,
		Result: j.plan.Stages[key.Stage].IsResult(), Elapsed: elapsed, RoundTrip: c.st.Now.Sub(r.Launched)})
}

// checkFailed fails a running job whose scheduler gave up.
func (a *applier) checkFailed(j *Job) {
	if j.Phase == Running && j.Err == "" {
		if err := j.sched.Err(); err != nil {
			a.fail(j, err.Error())
		}
	}
}

// fail records the first reason a job fails and frees its attempts in
// flight: RemoveJob stops them when the job is over, at the end of this
// Apply.
func (a *applier) fail(j *Job, reason string) {
	if j.Err == "" {
		j.Err = reason
	}
	a.killAll(j, reason)
	a.emit(Changed{Job: j.ID})
}

// killAll frees a job's attempts in flight: RemoveJob stops them on their
// agents.
func (a *applier) killAll(j *Job, reason string) {
	for _, key := range slices.Sorted(maps.Keys(j.Running)) {
		r := j.Running[key]
		delete(j.Running, key)
		a.use(j.Tenant, -1)
		a.logAttempt(j, TaskLog{Task: key, Attempt: r.Attempt, Agent: r.Agent, Outcome: "killed", Error: reason})
		k := parseKey(key)
		a.emit(AttemptEnded{Job: j.ID, Agent: r.Agent, Outcome: "killed", Err: reason, Task: k, Attempt: r.Attempt,
			Result: j.plan.Stages[k.Stage].IsResult(), RoundTrip: a.st.Now.Sub(r.Launched)})
	}
}

func (a *applier) status(st *Status) {
	c := a.Core
	j := c.st.Jobs[st.Job]
	if j == nil || j.Phase != Running {
		return // the job ended: its staging is gone with it
	}
	key := st.Task.String()
	r := j.Running[key]
	if _, ok := c.st.Agents[st.Agent]; !ok || r == nil || r.Attempt != st.Attempt || r.Agent != st.Agent {
		// A stale or duplicate report, or one from an agent declared
		// lost: its output is never used.
		c.logAttempt(j, TaskLog{Task: key, Attempt: st.Attempt, Agent: st.Agent, Outcome: "stale", Elapsed: st.Elapsed, Error: st.Err})
		a.emit(AttemptEnded{Job: j.ID, Agent: st.Agent, Outcome: "stale", Err: st.Err, Task: st.Task, Attempt: st.Attempt, Elapsed: st.Elapsed})
		if st.Failure == nil && !st.Inline && st.Task.Stage >= 0 && st.Task.Stage < len(j.plan.Stages) && j.plan.Stages[st.Task.Stage].IsResult() {
			a.emit(Discard{Job: j.ID, Partition: st.Task.Partition, Attempt: st.Attempt})
		}
		return
	}
	j.RoundTrips = appendBounded(j.RoundTrips, c.st.Now.Sub(r.Launched))
	if !st.Started.IsZero() {
		j.StartDelays = appendBounded(j.StartDelays, st.Started.Sub(r.Launched))
	}
	stage := j.plan.Stages[st.Task.Stage]
	if st.Failure != nil {
		f := *st.Failure
		if f.Kind == 0 {
			f.Kind = planner.TaskError
		}
		if f.Msg == "" {
			f.Msg = st.Err
		}
		a.ended(j, st.Task, r, outcomeOf(f.Kind), f, st.Elapsed)
		j.Logs[len(j.Logs)-1].Log = st.Log
		j.Logs[len(j.Logs)-1].Started = st.Started
		if st.Err != "" {
			j.Logs[len(j.Logs)-1].Error = st.Err
		}
		a.checkFailed(j)
		a.emit(Changed{Job: j.ID})
		return
	}
	if stage.Sample != nil {
		j.sched.RecordSamples(st.Task, st.Attempt, st.Samples)
	}
	j.sched.Succeeded(st.Task, st.Attempt)
	a.ended(j, st.Task, r, "succeeded", planner.Failure{}, st.Elapsed)
	j.Logs[len(j.Logs)-1].Started = st.Started
	e := a.out[len(a.out)-1].(AttemptEnded)
	if stage.IsResult() {
		j.RecordsOut += st.RecordsOut
		e.RecordsOut = st.RecordsOut
		if st.Inline {
			if j.Inline == nil {
				j.Inline = map[int][]byte{}
			}
			j.Inline[st.Task.Partition] = st.Output
		} else {
			delete(j.Inline, st.Task.Partition)
		}
	}
	if stage.Splits != nil && stage.Sample == nil {
		j.RecordsIn += st.RecordsIn
		j.BytesIn += st.BytesIn
		e.RecordsIn, e.BytesIn = st.RecordsIn, st.BytesIn
	}
	a.out[len(a.out)-1] = e
	j.PeakRSS = max(j.PeakRSS, st.PeakRSS)
	a.emit(Changed{Job: j.ID})
}

func outcomeOf(k planner.FailureKind) string {
	switch k {
	case planner.FetchFailed:
		return "fetch_failed"
	case planner.Lost:
		return "lost"
	case planner.Fatal:
		return "fatal"
	}
	return "failed"
}

func (a *applier) committed(cm *Committed) {
	c := a.Core
	j := c.st.Jobs[cm.Job]
	if j == nil || j.Phase != Committing {
		return
	}
	if j.Err == "" && cm.Err != "" {
		j.Err = cm.Err
	}
	if cm.RecordsOut != nil {
		j.RecordsOut = *cm.RecordsOut
	}
	delete(c.st.Jobs, j.ID)
	c.st.History = append(c.st.History, c.newRecord(j, cm.Output))
	a.emit(Ended{Job: j.ID})
}

// logAttempt keeps an attempt's outcome, the newest MaxTaskLogs.
// appendBounded appends d to ds, keeping the newest maxRoundTrips.
func appendBounded(ds []time.Duration, d time.Duration) []time.Duration {
	if len(ds) >= maxRoundTrips {
		ds = slices.Delete(ds, 0, len(ds)-maxRoundTrips+1)
	}
	return append(ds, d)
}

func (c *Core) logAttempt(j *Job, l TaskLog) {
	l.Time = c.st.Now
	if len(j.Logs) >= c.cfg.MaxTaskLogs {
		j.Logs = slices.Delete(j.Logs, 0, len(j.Logs)-c.cfg.MaxTaskLogs+1)
	}
	j.Logs = append(j.Logs, l)
}

// use records that a tenant's running attempts changed by delta.
func (c *Core) use(tenant string, delta int) {
	u := c.st.Usage[tenant]
	if u == nil {
		u = &Usage{Since: c.st.Now}
		c.st.Usage[tenant] = u
	}
	u.Seconds += float64(u.Running) * c.st.Now.Sub(u.Since).Seconds()
	u.Running += delta
	u.Since = c.st.Now
}

// TaskSeconds is the slot time a tenant's attempts have held, the running
// ones up to now.
func (c *Core) TaskSeconds(tenant string, now time.Time) float64 {
	u := c.st.Usage[tenant]
	if u == nil {
		return 0
	}
	return u.Seconds + float64(u.Running)*max(0, now.Sub(u.Since).Seconds())
}

// parseKey reads a TaskKey that TaskKey.String wrote.
func parseKey(s string) planner.TaskKey {
	st, p, _ := strings.Cut(s, ".")
	var k planner.TaskKey
	k.Stage, _ = strconv.Atoi(st)
	k.Partition, _ = strconv.Atoi(p)
	return k
}

// over reports whether a running job has nothing left to run: its result
// is complete, or it failed (and its attempts were freed).
func (j *Job) over() bool { return j.Err != "" || j.sched.Done() }

// maxTasks bounds a job's tasks whatever its command says: the shells
// check a spec's partitions and splits against far lower limits first.
const maxTasks = 1_000_000

// buildPlan builds the plan of a logical job without touching it: Restore
// builds it again from the same value.
func buildPlan(job planner.Job) (*planner.Plan, error) {
	b, err := json.Marshal(job)
	if err != nil {
		return nil, err
	}
	var clone planner.Job
	if err := json.Unmarshal(b, &clone); err != nil {
		return nil, err
	}
	n := len(clone.Splits)
	for _, d := range clone.Datasets {
		n += max(d.Partitions, 0) + len(d.Splits)
	}
	if n > maxTasks {
		return nil, fmt.Errorf("the job has %d partitions and splits, more than the %d a job may have", n, maxTasks)
	}
	return planner.Build(clone)
}
