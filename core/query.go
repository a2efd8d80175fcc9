package core

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/planner"
)

// JobInfo is a job as the API shows it: one that runs or one in the
// history.
type JobInfo struct {
	ID        string
	Tenant    string
	Name      string
	State     string // running, committing, succeeded, failed, canceled
	Err       string
	Submitted time.Time
	Ended     time.Time // zero while it runs
	Output    string
	Payload   []byte
	Stages    []StageInfo
	Counters
	// Record is the finished job's record; nil while it runs.
	Record *Record
}

// StageInfo is a stage's progress and, when some of its tasks wait, why.
type StageInfo struct {
	StageProgress
	Pending int
	Why     *Reason
}

// Reason says why a stage's pending tasks do not run: Code is stable for
// programs, Message is for people.
type Reason struct {
	Code    string
	Message string
}

// Reason codes.
const (
	ReasonParentStage = "parent_stage"  // a stage it reads is not done
	ReasonNoAgents    = "no_agents"     // no agent is registered
	ReasonNoAgentFits = "no_agent_fits" // no agent is large enough for one task
	ReasonQuota       = "quota"         // the tenant's limit is reached
	ReasonFairShare   = "fair_share"    // others hold the free resources by their fair share
	ReasonFiltered    = "filtered"      // the agents that could run it were declined lately
	ReasonEnding      = "ending"        // the job failed or was canceled and is ending
)

// Jobs lists every job the core knows, running and finished, in
// submission order, without their stages.
func (c *Core) Jobs() []JobInfo {
	var out []JobInfo
	for _, r := range c.st.History {
		out = append(out, recordInfo(r, false))
	}
	for _, j := range c.jobs() {
		out = append(out, JobInfo{ID: j.ID, Tenant: j.Tenant, Name: j.Name, State: j.Phase, Err: j.Err, Submitted: j.Submitted, Payload: j.Payload, Counters: j.Counters})
	}
	slices.SortFunc(out, func(a, b JobInfo) int { return cmp.Compare(jobSeq(a.ID), jobSeq(b.ID)) })
	return out
}

func jobSeq(id string) uint64 {
	var n uint64
	_, _ = fmt.Sscanf(id, "job-%d", &n)
	return n
}

func recordInfo(r *Record, detail bool) JobInfo {
	info := JobInfo{ID: r.ID, Tenant: r.Tenant, Name: r.Name, State: r.State, Err: r.Err, Submitted: r.Submitted, Ended: r.Ended, Output: r.Output, Payload: r.Payload, Counters: r.Counters}
	if detail {
		info.Record = r
		for _, s := range r.Stages {
			info.Stages = append(info.Stages, StageInfo{StageProgress: s, Pending: s.Tasks - s.Running - s.Done})
		}
	}
	return info
}

// Job describes one job, with its stages and why their pending tasks
// wait.
func (c *Core) Job(id string) (JobInfo, bool) {
	if r := c.findRecord(id); r != nil {
		return recordInfo(r, true), true
	}
	j := c.st.Jobs[id]
	if j == nil {
		return JobInfo{}, false
	}
	info := JobInfo{ID: j.ID, Tenant: j.Tenant, Name: j.Name, State: j.Phase, Err: j.Err, Submitted: j.Submitted, Payload: j.Payload, Counters: j.Counters}
	var al *allocator.Allocator
	for _, sp := range stages(j) {
		si := StageInfo{StageProgress: sp, Pending: sp.Tasks - sp.Running - sp.Done}
		if si.Pending > 0 {
			if al == nil {
				al = c.allocator()
			}
			why := c.whyPending(al, j, j.plan.Stages[sp.ID])
			si.Why = &why
		}
		info.Stages = append(info.Stages, si)
	}
	return info, true
}

// record finds a finished job's record.
func (c *Core) findRecord(id string) *Record {
	i := slices.IndexFunc(c.st.History, func(r *Record) bool { return r.ID == id })
	if i < 0 {
		return nil
	}
	return c.st.History[i]
}

// Record returns a finished job's record.
func (c *Core) Record(id string) (*Record, bool) {
	r := c.findRecord(id)
	return r, r != nil
}

// Payload returns the shell's record of a job, running or finished.
func (c *Core) Payload(id string) ([]byte, bool) {
	if j := c.st.Jobs[id]; j != nil {
		return j.Payload, true
	}
	if r := c.findRecord(id); r != nil {
		return r.Payload, true
	}
	return nil, false
}

// Plan returns a running job's plan.
func (c *Core) Plan(id string) (*planner.Plan, bool) {
	if j := c.st.Jobs[id]; j != nil {
		return j.plan, true
	}
	return nil, false
}

// Progress is a running job's progress by stage.
func (c *Core) Progress(id string) ([]StageProgress, Counters, bool) {
	if j := c.st.Jobs[id]; j != nil {
		return stages(j), j.Counters, true
	}
	if r := c.findRecord(id); r != nil {
		return r.Stages, r.Counters, true
	}
	return nil, Counters{}, false
}

// Logs lists how a job's attempts ended (one task's when task is not
// empty), oldest first.
func (c *Core) Logs(id, task string) ([]TaskLog, bool) {
	var logs []TaskLog
	if j := c.st.Jobs[id]; j != nil {
		logs = j.Logs
	} else if r := c.findRecord(id); r != nil {
		logs = r.Logs
	} else {
		return nil, false
	}
	out := []TaskLog{}
	for _, l := range logs {
		if task == "" || l.Task == task {
			out = append(out, l)
		}
	}
	return out, true
}

// Agents lists the registered agents, by name.
func (c *Core) Agents() []Agent {
	var out []Agent
	for _, n := range c.agentNames() {
		out = append(out, *c.st.Agents[n])
	}
	return out
}

// LostAgents lists the agents declared lost that have not come back.
func (c *Core) LostAgents() []string { return slices.Clone(c.st.Lost) }

// RunningOn lists the attempts in flight on an agent.
func (c *Core) RunningOn(agent string) []Attempt {
	var out []Attempt
	for _, j := range c.jobs() {
		for _, key := range slices.Sorted(maps.Keys(j.Running)) {
			if r := j.Running[key]; r.Agent == agent {
				out = append(out, Attempt{Job: j.ID, Task: parseKey(key), Attempt: r.Attempt})
			}
		}
	}
	return out
}

// Committing lists the jobs whose output the shell must commit: a new
// leader, or a restarted coordinator, commits them again (the commit is
// idempotent).
func (c *Core) Committing() []Commit {
	var out []Commit
	for _, j := range c.jobs() {
		if j.Phase != Committing {
			continue
		}
		out = append(out, commitOf(j))
	}
	return out
}

// whyPending says why a stage's pending tasks do not run.
func (c *Core) whyPending(al *allocator.Allocator, j *Job, st *planner.Stage) Reason {
	if j.Err != "" {
		return Reason{ReasonEnding, "the job is ending: " + j.Err}
	}
	for _, parent := range st.Parents {
		if !j.sched.StageDone(parent) {
			return Reason{ReasonParentStage, fmt.Sprintf("parent stage %d is not done", parent)}
		}
	}
	if len(c.st.Agents) == 0 {
		return Reason{ReasonNoAgents, "no agent is registered"}
	}
	fits := false
	var largest int64
	for _, n := range c.agentNames() {
		ag := c.st.Agents[n]
		fits = fits || ag.Resources.Contains(j.Task)
		largest = max(largest, ag.Resources.Mem)
	}
	if !fits {
		return Reason{ReasonNoAgentFits, fmt.Sprintf("no agent has %d MiB of memory for a task (task.memory); the largest has %d MiB", j.Task.Mem, largest)}
	}
	info, _ := al.TenantInfo(j.Tenant)
	if !info.UnderLimit(j.Task) {
		return Reason{ReasonQuota, fmt.Sprintf("quota reached: tenant %s holds %s, its limit is %s", j.Tenant, info.Allocated, info.Limit)}
	}
	if len(j.Filters) > 0 {
		return Reason{ReasonFiltered, fmt.Sprintf("its tasks last failed on %s, offered again after %s", strings.Join(slices.Sorted(maps.Keys(j.Filters)), ", "), c.cfg.RefuseFor)}
	}
	var others []string
	for _, name := range al.TenantNames() {
		if name == j.Tenant {
			continue
		}
		if s := al.TenantShare(name); s > 0 {
			others = append(others, fmt.Sprintf("%s %.2f", name, s))
		}
	}
	msg := fmt.Sprintf("waiting for free resources: tenant %s holds a dominant share of %.2f (weight %g)", j.Tenant, al.TenantShare(j.Tenant), info.Weight)
	if len(others) > 0 {
		msg += "; others: " + strings.Join(others, ", ")
	}
	return Reason{ReasonFairShare, msg}
}

// AgentView is an agent with what it has free.
type AgentView struct {
	Agent
	Free allocator.Resources
}

// AgentViews lists the registered agents with their free resources.
func (c *Core) AgentViews() []AgentView {
	al := c.allocator()
	var out []AgentView
	for _, n := range c.agentNames() {
		free, _ := al.Free(allocator.AgentID(n))
		out = append(out, AgentView{Agent: *c.st.Agents[n], Free: free})
	}
	return out
}

// TenantView is a tenant's settings and what it holds now.
type TenantView struct {
	Name string
	allocator.TenantState
	DominantShare float64
	TaskSeconds   float64
	Jobs          int // running
}

// Tenants lists the tenants: the configured ones, then those with jobs,
// in the allocator's order.
func (c *Core) Tenants(now time.Time) []TenantView {
	al := c.allocator()
	jobs := map[string]int{}
	for _, j := range c.st.Jobs {
		jobs[j.Tenant]++
	}
	var out []TenantView
	for _, name := range al.TenantNames() {
		info, _ := al.TenantInfo(name)
		out = append(out, TenantView{Name: name, TenantState: info, DominantShare: al.TenantShare(name), TaskSeconds: c.TaskSeconds(name, now), Jobs: jobs[name]})
	}
	return out
}
