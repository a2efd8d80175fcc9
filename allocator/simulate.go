package allocator

import (
	"errors"
	"fmt"
	"math"
)

// Scenario is a cluster and the demands of its tenants, for Simulate. It
// is what `grid allocator simulate` reads from TOML.
type Scenario struct {
	Agents  []AgentSpec
	Tenants []TenantSpec
}

// AgentSpec is Count identical agents.
type AgentSpec struct {
	Count        int
	Total        Resources
	Reservations map[string]Resources // static, per tenant, on each agent
}

// TenantSpec is a tenant that wants Tasks tasks of size Task; zero Tasks
// means as many as it can get.
type TenantSpec struct {
	Name   string
	Weight float64
	Task   Resources
	Tasks  int
	Quota  Quota
}

// Quota is a tenant's guarantee and limit; see Tenant.
type Quota struct {
	Guarantee, Limit Resources
}

// Result is what each tenant placed, in the order of the scenario.
type Result struct {
	Tenants []TenantResult
}

// TenantResult is what one tenant placed.
type TenantResult struct {
	Name          string
	Tasks         int
	Alloc         Resources
	DominantShare float64 // of the whole cluster, not weighted
}

// Validate reports what is wrong with s, if anything. Simulate ignores
// tenants and agents that Validate rejects.
func (s Scenario) Validate() error {
	var errs []error
	names := map[string]bool{}
	for i, t := range s.Tenants {
		switch {
		case names[t.Name]:
			errs = append(errs, fmt.Errorf("tenant %d: duplicate name %q", i, t.Name))
		case t.Task.Negative() || t.Task.IsZero():
			errs = append(errs, fmt.Errorf("tenant %q: task %s must be positive", t.Name, t.Task))
		case t.Tasks < 0:
			errs = append(errs, fmt.Errorf("tenant %q: negative task count %d", t.Name, t.Tasks))
		}
		if err := (Tenant{Weight: t.Weight, Guarantee: t.Quota.Guarantee, Limit: t.Quota.Limit}).validate(); err != nil {
			errs = append(errs, fmt.Errorf("tenant %q: %w", t.Name, err))
		}
		names[t.Name] = true
	}
	for i, g := range s.Agents {
		var sum Resources
		for _, r := range g.Reservations {
			sum = sum.Add(r)
		}
		if g.Count < 0 || g.Total.Negative() || !g.Total.Contains(sum) {
			errs = append(errs, fmt.Errorf("agents %d: invalid count %d, total %s or reservations %s", i, g.Count, g.Total, sum))
		}
	}
	return errors.Join(errs...)
}

// simTenant is a tenant's demand during Simulate.
type simTenant struct {
	spec   TenantSpec
	placed int
	valid  bool
	index  int
}

func (t *simTenant) wants() bool { return t.valid && (t.spec.Tasks == 0 || t.placed < t.spec.Tasks) }

// Simulate runs offer cycles on s until no tenant can place another task.
// Each tenant is one framework whose demand (SetDemand) is its task and
// the number it still wants, so that each offer holds one task and counts
// in shares as one: a cycle is DRF's progressive filling, task by task.
// Each offer's framework accepts the task if it fits, and otherwise
// declines with a filter against offers smaller than its task. It is pure
// and deterministic.
func Simulate(s Scenario) Result {
	_, r := simulate(s, nil)
	return r
}

// simulate is Simulate, also returning the allocator for tests to inspect
// and telling placed, if not nil, where each task of tenant i went.
func simulate(s Scenario, placed func(i int, ag AgentID)) (*Allocator, Result) {
	al := New()
	ts := make([]*simTenant, len(s.Tenants))
	byFramework := map[FrameworkID]*simTenant{}
	for i, spec := range s.Tenants {
		t := &simTenant{spec: spec, index: i}
		ts[i] = t
		err := al.AddTenant(spec.Name, Tenant{Weight: spec.Weight, Guarantee: spec.Quota.Guarantee, Limit: spec.Quota.Limit})
		if err != nil || spec.Task.Negative() || spec.Task.IsZero() || spec.Tasks < 0 {
			continue
		}
		t.valid = true
		fid := FrameworkID(spec.Name)
		_ = al.AddFramework(fid, spec.Name)
		_ = al.SetDemand(fid, Demand{Task: spec.Task, Tasks: spec.Tasks})
		byFramework[fid] = t
	}
	for g, spec := range s.Agents {
		for i := range spec.Count {
			id := AgentID(fmt.Sprintf("g%04d-a%08d", g, i))
			_ = al.AddAgentWithReservations(id, spec.Total, spec.Reservations)
		}
	}
	for {
		offers := al.Allocate()
		if len(offers) == 0 {
			break
		}
		for _, o := range offers {
			t := byFramework[o.Framework]
			if !t.wants() || !o.Resources.Contains(t.spec.Task) {
				_ = al.DeclineWithFilter(o.ID, Filter{MinResources: t.spec.Task})
				continue
			}
			_ = al.Accept(o.ID, t.spec.Task)
			t.placed++
			if t.spec.Tasks > 0 && t.wants() {
				_ = al.SetDemand(o.Framework, Demand{Task: t.spec.Task, Tasks: t.spec.Tasks - t.placed})
			}
			if placed != nil {
				placed(t.index, o.Agent)
			}
			if !t.wants() {
				al.Suppress(o.Framework)
			}
		}
		closeFullAgents(al, ts)
	}
	res := Result{Tenants: make([]TenantResult, len(ts))}
	for i, t := range ts {
		alloc, _ := al.TenantAllocation(t.spec.Name)
		res.Tenants[i] = TenantResult{Name: t.spec.Name, Tasks: t.placed, Alloc: alloc, DominantShare: alloc.DominantShare(al.Total())}
	}
	return al, res
}

// closeFullAgents takes out of the cycles the agents where no task of a
// tenant that still wants some fits, so that the last cycles do not visit
// them over and over. It looks at each agent's free resources, reserved
// ones included, so it never closes an agent where a task could still go.
func closeFullAgents(al *Allocator, ts []*simTenant) {
	smallest := Resources{CPU: math.MaxInt64, Mem: math.MaxInt64, Disk: math.MaxInt64}
	for _, t := range ts {
		if t.wants() {
			smallest = smallest.Min(t.spec.Task)
		}
	}
	al.sortAgents()
	for _, ag := range al.order {
		if !ag.closed && !ag.free().Contains(smallest) {
			ag.closed = true
		}
	}
}
