package allocator

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPropertyOffersFollowDRF drives the allocator through random event
// sequences on random clusters (heterogeneous agents, weighted tenants with
// guarantees and limits, several frameworks per tenant) and checks every
// offer of every cycle against a naive model of the rule: the agent goes
// to the tenant below its guarantee that is least satisfied, else to the
// tenant with the lowest weighted dominant share, among those that may
// take it (a framework not suppressed, without a filter that forbids it,
// under its limit), to that tenant's framework with the lowest share, ties
// broken by registration order; and the offer is the agent's whole free
// resources cut to the tenant's limit. Between cycles, frameworks accept
// parts of offers, decline with filters, finish tasks, suppress and revive;
// agents come and go. The books must balance after every step.
func TestPropertyOffersFollowDRF(t *testing.T) {
	for seed := range uint64(150) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runModel(t, seed) })
	}
}

type modelTask struct {
	agent AgentID
	fw    FrameworkID
	r     Resources
}

func runModel(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 99))
	a := New()
	var agents []AgentID
	addAgent := func(i int) {
		id := AgentID(fmt.Sprintf("a%03d", i))
		must(t, a.AddAgent(id, Resources{CPU: int64(1+r.IntN(16)) * 1000, Mem: int64(1+r.IntN(64)) * 1024}))
		agents = append(agents, id)
	}
	for i := range 1 + r.IntN(40) {
		addAgent(i)
	}
	nextAgent := len(agents)
	var fws []FrameworkID
	for i := range 2 + r.IntN(6) {
		name := fmt.Sprintf("t%d", i)
		var tn Tenant
		tn.Weight = float64(1 + r.IntN(4))
		if r.IntN(3) == 0 {
			tn.Guarantee = Resources{CPU: int64(1+r.IntN(8)) * 1000}
		}
		if r.IntN(3) == 0 {
			tn.Limit = Resources{CPU: tn.Guarantee.CPU + int64(1+r.IntN(16))*1000, Mem: int64(8+r.IntN(64)) * 1024}
		}
		must(t, a.AddTenant(name, tn))
		for j := range 1 + r.IntN(2) {
			id := FrameworkID(fmt.Sprintf("f%d.%d", i, j))
			must(t, a.AddFramework(id, name))
			if r.IntN(3) == 0 {
				must(t, a.SetDemand(id, Demand{Task: Resources{CPU: int64(1+r.IntN(4)) * 1000, Mem: int64(1+r.IntN(8)) * 1024}, Tasks: r.IntN(20)}))
			}
			fws = append(fws, id)
		}
	}
	var tasks []modelTask
	for cycle := range 30 {
		offers := a.Allocate()
		checkOffers(t, a, offers, cycle)
		checkConservation(t, a)
		// Frameworks answer every offer.
		for _, o := range offers {
			switch r.IntN(4) {
			case 0, 1:
				used := Resources{CPU: min(o.Resources.CPU, int64(1+r.IntN(4))*500), Mem: min(o.Resources.Mem, int64(1+r.IntN(8))*512)}
				must(t, a.Accept(o.ID, used))
				tasks = append(tasks, modelTask{o.Agent, o.Framework, used})
			case 2:
				must(t, a.DeclineWithFilter(o.ID, Filter{MinResources: Resources{CPU: int64(1+r.IntN(8)) * 1000, Mem: 1024}}))
			default:
				a.Decline(o.ID)
			}
		}
		checkConservation(t, a)
		// Some tasks finish.
		for i := 0; i < len(tasks); {
			if r.IntN(4) == 0 {
				a.Recover(tasks[i].agent, tasks[i].fw, tasks[i].r)
				tasks = append(tasks[:i], tasks[i+1:]...)
				continue
			}
			i++
		}
		// Frameworks suppress and revive; agents leave and join.
		for _, f := range fws {
			switch r.IntN(8) {
			case 0:
				a.Suppress(f)
			case 1:
				a.Revive(f)
			}
		}
		if r.IntN(5) == 0 && len(agents) > 1 {
			i := r.IntN(len(agents))
			gone := agents[i]
			agents = append(agents[:i], agents[i+1:]...)
			a.RemoveAgent(gone)
			for j := 0; j < len(tasks); {
				if tasks[j].agent == gone {
					a.Recover(gone, tasks[j].fw, tasks[j].r)
					tasks = append(tasks[:j], tasks[j+1:]...)
					continue
				}
				j++
			}
		}
		if r.IntN(5) == 0 {
			addAgent(nextAgent)
			nextAgent++
		}
		checkConservation(t, a)
	}
}

// checkOffers replays one cycle's offers against the naive rule, from the
// state the allocator is in after the cycle minus the cycle's offers.
func checkOffers(t *testing.T, a *Allocator, offers []Offer, cycle int) {
	t.Helper()
	tenantAlloc := map[string]Resources{}
	fwAlloc := map[FrameworkID]Resources{}
	free := map[AgentID]Resources{}
	for name, tn := range a.tenants {
		tenantAlloc[name] = tn.allocated
	}
	m := &modelOffers{count: map[FrameworkID]int{}, onAgent: map[modelKey]bool{}}
	for id, f := range a.frameworks {
		fwAlloc[id] = f.allocated
		m.count[id] = f.offers
	}
	for id, ag := range a.agents {
		free[id] = ag.unreservedFree()
	}
	for _, o := range offers {
		tenantAlloc[a.frameworks[o.Framework].tenant.name] = tenantAlloc[a.frameworks[o.Framework].tenant.name].Sub(o.Resources)
		fwAlloc[o.Framework] = fwAlloc[o.Framework].Sub(o.Resources)
		free[o.Agent] = free[o.Agent].Add(o.Resources)
		m.count[o.Framework]--
	}
	lastAgent := AgentID("")
	for _, o := range offers {
		if o.Agent < lastAgent {
			t.Fatalf("cycle %d: offer on %s after one on %s: agents out of order", cycle, o.Agent, lastAgent)
		}
		lastAgent = o.Agent
		ag := a.agents[o.Agent]
		// Who may take the agent, and through which framework: first
		// the tenants below their guarantees, then everyone.
		want := pickModel(a, m, tenantAlloc, fwAlloc, free, ag.id)
		if want == nil {
			t.Fatalf("cycle %d: offer %+v, but no framework may take %s", cycle, o, o.Agent)
		}
		if o.Framework != want.fw.id || o.Resources != want.amt {
			t.Fatalf("cycle %d: %s offered %v to %s; the rule gives %v to %s (tenant %s)", cycle, o.Agent, o.Resources, o.Framework, want.amt, want.fw.id, want.tn.name)
		}
		tenantAlloc[want.tn.name] = tenantAlloc[want.tn.name].Add(o.Resources)
		fwAlloc[o.Framework] = fwAlloc[o.Framework].Add(o.Resources)
		free[o.Agent] = free[o.Agent].Sub(o.Resources)
		m.count[o.Framework]++
		m.onAgent[modelKey{o.Framework, o.Agent}] = true
	}
	// No agent left out that someone could have taken.
	for id := range free {
		if want := pickModel(a, m, tenantAlloc, fwAlloc, free, id); want != nil {
			t.Fatalf("cycle %d: %s has %v free that %s could take, but got no offer", cycle, id, free[id], want.fw.id)
		}
	}
}

type modelPick struct {
	tn  *tenant
	fw  *framework
	amt Resources
}

// pickModel is who the naive rule offers agent id's free resources to,
// or nil.
type modelKey struct {
	f  FrameworkID
	ag AgentID
}

// modelOffers is what the model knows of the cycle's offers so far.
type modelOffers struct {
	count   map[FrameworkID]int
	onAgent map[modelKey]bool
}

func pickModel(a *Allocator, m *modelOffers, tenantAlloc map[string]Resources, fwAlloc map[FrameworkID]Resources, free map[AgentID]Resources, id AgentID) *modelPick {
	var avail, need Resources
	for _, fr := range free {
		avail = avail.Add(fr)
	}
	needOf := func(tn *tenant) Resources {
		if tn.Guarantee.IsZero() {
			return Resources{}
		}
		return tn.Guarantee.Sub(tenantAlloc[tn.name]).Max(Resources{})
	}
	for _, tn := range a.tenants {
		need = need.Add(needOf(tn))
	}
	candidate := func(tn *tenant, quota bool) *modelPick {
		amt := free[id].headroomCap(tenantAlloc[tn.name], tn.Limit)
		if !amt.offerable() {
			return nil
		}
		own := needOf(tn)
		c := avail.Sub(need.Sub(own)).Max(Resources{})
		if quota {
			c = c.Max(own)
		}
		if amt = amt.Min(c); !amt.offerable() {
			return nil
		}
		var best *framework
		var bestAmt Resources
		for _, f := range tn.frameworks {
			if f.suppressed {
				continue
			}
			if f.demand.Tasks > 0 && m.count[f.id] >= f.demand.Tasks {
				continue
			}
			fa := amt
			if f.demand.Task.IsZero() {
				if m.onAgent[modelKey{f.id, id}] {
					continue
				}
			} else {
				fa = fa.Min(f.demand.Task)
			}
			if flt, ok := f.filters[id]; ok && flt.blocks(fa, a.alloc.now) {
				continue
			}
			sf, sb := 0.0, 0.0
			if best != nil {
				sf, sb = fwAlloc[f.id].DominantShare(a.total), fwAlloc[best.id].DominantShare(a.total)
			}
			if best == nil || sf < sb || (sf == sb && f.seq < best.seq) {
				best, bestAmt = f, fa
			}
		}
		if best == nil {
			return nil
		}
		return &modelPick{tn, best, bestAmt}
	}
	pick := func(quota bool, key func(*tenant) float64) *modelPick {
		var want *modelPick
		for _, tn := range a.tenants {
			if quota && (tn.Guarantee.IsZero() || key(tn) >= 1) {
				continue
			}
			c := candidate(tn, quota)
			if c == nil {
				continue
			}
			if want == nil || key(tn) < key(want.tn) || (key(tn) == key(want.tn) && tn.seq < want.tn.seq) {
				want = c
			}
		}
		return want
	}
	if w := pick(true, func(tn *tenant) float64 { return tenantAlloc[tn.name].satisfaction(tn.Guarantee) }); w != nil {
		return w
	}
	return pick(false, func(tn *tenant) float64 { return tenantAlloc[tn.name].DominantShare(a.total) / tn.Weight })
}
