package core

import (
	"maps"
	"slices"
	"time"

	"github.com/wasmgrid/wasmgrid/allocator"
	"github.com/wasmgrid/wasmgrid/planner"
)

// schedule finishes the jobs that are over and offers free resources to
// the jobs that have work, in rounds: an offer a job cannot use is
// declined with a filter and the round runs again, so that the job is
// offered another agent now rather than at the next command. Each round
// filters out at least one agent.
func (a *applier) schedule() {
	c := a.Core
	for _, j := range c.jobs() {
		if j.Phase == Running && j.over() {
			a.finish(j)
		}
	}
	for _, j := range c.jobs() {
		maps.DeleteFunc(j.Filters, func(_ string, until time.Time) bool { return !c.st.Now.Before(until) })
	}
	al := c.allocator()
	for range len(c.st.Agents) + 1 {
		a.setDemands(al)
		if !a.offerRound(al) {
			break
		}
	}
	var wake time.Time
	for _, j := range c.jobs() {
		for _, until := range j.Filters {
			if wake.IsZero() || until.Before(wake) {
				wake = until
			}
		}
	}
	if !wake.IsZero() {
		a.emit(Wake{At: wake})
	}
}

// allocator builds the offer allocator of this moment from the state: the
// configured tenants, the agents, the running jobs as frameworks with
// their decline filters, and every attempt in flight as an allocation.
// It is a function of the state alone, so that a server restored from a
// snapshot offers exactly what the others offer.
func (c *Core) allocator() *allocator.Allocator {
	now := c.st.Now
	al, err := allocator.NewWithConfig(allocator.Config{Clock: func() time.Time { return now }})
	if err != nil {
		panic(err) // the config is constant and valid
	}
	for _, t := range c.cfg.Tenants {
		_ = al.AddTenant(t.Name, t.Tenant) // validated by New
	}
	names := c.agentNames()
	for _, n := range names {
		_ = al.AddAgent(allocator.AgentID(n), c.st.Agents[n].Resources)
	}
	jobs := c.jobs()
	for _, j := range jobs {
		if j.Phase != Running {
			continue
		}
		id := allocator.FrameworkID(j.ID)
		_ = al.AddFramework(id, j.Tenant)
		for _, ag := range slices.Sorted(maps.Keys(j.Filters)) {
			al.SetFilter(id, allocator.AgentID(ag), j.Filters[ag])
		}
		if j.Suppressed {
			al.Suppress(id)
		}
	}
	// What a job uses on an agent is its task size times its attempts
	// there. Use only adds (and takes from a reservation the least of what
	// is used and what is left, which sums the same way), so the order of
	// the calls cannot change the books: the maps are ranged unsorted, an
	// exception to the core's rule that is worth a third of a cycle at a
	// thousand agents.
	perAgent := map[string]int64{}
	for _, j := range jobs {
		clear(perAgent)
		for _, r := range j.Running {
			perAgent[r.Agent]++
		}
		for ag, n := range perAgent {
			_ = al.Use(allocator.AgentID(ag), allocator.FrameworkID(j.ID), allocator.Resources{CPU: j.Task.CPU * n, Mem: j.Task.Mem * n, Disk: j.Task.Disk * n})
		}
	}
	for _, n := range names {
		if c.st.Agents[n].Suspect {
			al.RemoveAgent(allocator.AgentID(n))
		}
	}
	return al
}

// setDemands tells the allocator what each job can start now: offers of
// one task each, as many as it has runnable tasks (so that shares count
// what jobs use, and one agent serves several jobs in a cycle), or none.
func (a *applier) setDemands(al *allocator.Allocator) {
	for _, j := range a.jobs() {
		if j.Phase != Running {
			continue
		}
		id := allocator.FrameworkID(j.ID)
		if n := j.sched.Runnable(); n > 0 && j.Err == "" {
			_ = al.SetDemand(id, allocator.Demand{Task: j.Task, Tasks: n})
			if j.Suppressed {
				al.Revive(id)
				j.Suppressed = false
				clear(j.Filters)
			}
		} else if !j.Suppressed {
			al.Suppress(id)
			j.Suppressed = true
		}
	}
}

// offerRound runs one offer cycle and launches what the offers hold. It
// reports whether some offer could not be used.
func (a *applier) offerRound(al *allocator.Allocator) (refused bool) {
	c := a.Core
	for _, o := range al.Allocate() {
		j := c.st.Jobs[string(o.Framework)]
		agent := string(o.Agent)
		used := allocator.Resources{}
		for o.Resources.Sub(used).Contains(j.Task) {
			spec, ok := j.sched.Next(agent, len(c.st.Agents) == 1)
			if !ok {
				break
			}
			used = used.Add(j.Task)
			j.Attempts++
			j.Running[spec.Key.String()] = &Launched{Attempt: spec.Attempt, Agent: agent, Launched: c.st.Now}
			c.use(j.Tenant, +1)
			a.emit(Launch{Job: j.ID, Tenant: j.Tenant, Agent: agent, Spec: spec, BlockServers: c.blockServers(spec)})
		}
		if used.IsZero() && j.sched.HasRunnable() {
			refused = true
			if j.Filters == nil {
				j.Filters = map[string]time.Time{}
			}
			j.Filters[agent] = c.st.Now.Add(c.cfg.RefuseFor)
			_ = al.DeclineWithFilter(o.ID, allocator.Filter{Duration: c.cfg.RefuseFor})
			continue
		}
		_ = al.Accept(o.ID, used)
		if !used.IsZero() {
			a.emit(Changed{Job: j.ID})
		}
	}
	return refused
}

// blockServers are the block server addresses of the agents whose map
// outputs spec reads.
func (c *Core) blockServers(spec planner.TaskSpec) map[string]string {
	m := map[string]string{}
	add := func(ins []planner.MapOutputLoc) {
		for _, in := range ins {
			if ag, ok := c.st.Agents[in.Agent]; ok {
				m[in.Agent] = ag.BlockAddr
			}
		}
	}
	add(spec.Inputs)
	add(spec.RightInputs) // a join's right side may live on other agents
	for _, ins := range spec.BroadcastInputs {
		add(ins)
	}
	return m
}

// commitOf is the commit of a job whose run ended.
func commitOf(j *Job) Commit {
	cm := Commit{Job: j.ID, Err: j.Err}
	if j.Err == "" {
		for p, t := range j.sched.State().Tasks[j.plan.Result().ID] {
			cm.Parts = append(cm.Parts, t.Attempt)
			_, inline := j.Inline[p]
			cm.Inline = append(cm.Inline, inline)
		}
	}
	return cm
}

// finish ends a job's run: its shuffle files are deleted on every agent
// and its output is committed (or cleaned up, for a failed job) by the
// shell, which then applies Committed.
func (a *applier) finish(j *Job) {
	j.Phase = Committing
	// Attempts still in flight (a map task run again for an output the
	// result no longer needs) are stopped by RemoveJob.
	a.killAll(j, "the job no longer needs it")
	a.emit(RemoveJob{Job: j.ID, Agents: slices.Clone(a.agentNames())})
	a.emit(commitOf(j))
	a.emit(Changed{Job: j.ID})
}
