package allocator

import (
	"cmp"
	"fmt"
	"slices"
)

// AgentID names an agent.
type AgentID string

// FrameworkID names a framework: one job's scheduler.
type FrameworkID string

// OfferID names an outstanding offer.
type OfferID uint64

// Offer lends one agent's free resources to one framework until the
// framework accepts (part of) it or declines it.
type Offer struct {
	ID        OfferID
	Agent     AgentID
	Framework FrameworkID
	Resources Resources
}

type agent struct {
	id        AgentID
	total     Resources
	offered   Resources
	allocated Resources
}

func (a *agent) free() Resources { return a.total.Sub(a.offered).Sub(a.allocated) }

type framework struct {
	id         FrameworkID
	role       string
	allocated  Resources
	suppressed bool
	seq        uint64 // registration order, the tie-break
}

// Allocator is the offer allocator. It is not safe for concurrent use: one
// goroutine (the coordinator's) owns it.
type Allocator struct {
	agents     map[AgentID]*agent
	frameworks map[FrameworkID]*framework
	offers     map[OfferID]*Offer
	nextOffer  OfferID
	nextSeq    uint64
	total      Resources
}

// New returns an allocator with no agents and no frameworks.
func New() *Allocator {
	return &Allocator{
		agents:     make(map[AgentID]*agent),
		frameworks: make(map[FrameworkID]*framework),
		offers:     make(map[OfferID]*Offer),
	}
}

// AddAgent adds an agent's resources to the pool.
func (a *Allocator) AddAgent(id AgentID, total Resources) error {
	if _, ok := a.agents[id]; ok {
		return fmt.Errorf("allocator: agent %s already added", id)
	}
	if total.Negative() {
		return fmt.Errorf("allocator: agent %s has negative resources %s", id, total)
	}
	a.agents[id] = &agent{id: id, total: total}
	a.total = a.total.Add(total)
	return nil
}

// RemoveAgent removes an agent and rescinds its outstanding offers, which it
// returns. The caller recovers the resources of the tasks that ran on it
// (Recover) as it marks them lost.
func (a *Allocator) RemoveAgent(id AgentID) []Offer {
	ag, ok := a.agents[id]
	if !ok {
		return nil
	}
	var rescinded []Offer
	for _, o := range a.sortedOffers() {
		if o.Agent == id {
			rescinded = append(rescinded, *o)
			a.Decline(o.ID)
		}
	}
	a.total = a.total.Sub(ag.total)
	delete(a.agents, id)
	return rescinded
}

// AddFramework registers a framework under a role (its tenant).
func (a *Allocator) AddFramework(id FrameworkID, role string) error {
	if _, ok := a.frameworks[id]; ok {
		return fmt.Errorf("allocator: framework %s already added", id)
	}
	a.nextSeq++
	a.frameworks[id] = &framework{id: id, role: role, seq: a.nextSeq}
	return nil
}

// RemoveFramework unregisters a framework; its outstanding offers return to
// the pool. The caller recovers the resources of its running tasks as they
// end.
func (a *Allocator) RemoveFramework(id FrameworkID) {
	for _, o := range a.sortedOffers() {
		if o.Framework == id {
			a.Decline(o.ID)
		}
	}
	delete(a.frameworks, id)
}

// Suppress stops offers to a framework until Revive.
func (a *Allocator) Suppress(id FrameworkID) {
	if f, ok := a.frameworks[id]; ok {
		f.suppressed = true
	}
}

// Revive resumes offers to a suppressed framework.
func (a *Allocator) Revive(id FrameworkID) {
	if f, ok := a.frameworks[id]; ok {
		f.suppressed = false
	}
}

// Allocate offers every agent's free resources, each agent to the framework
// with the lowest dominant share at that moment (ties broken by registration
// order), and returns the new offers. Agents are visited in ID order, so the
// result is deterministic.
func (a *Allocator) Allocate() []Offer {
	var out []Offer
	ids := make([]AgentID, 0, len(a.agents))
	for id := range a.agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		ag := a.agents[id]
		free := ag.free()
		if free.CPU <= 0 || free.Mem <= 0 {
			continue
		}
		f := a.lowestShare(id)
		if f == nil {
			break
		}
		a.nextOffer++
		o := &Offer{ID: a.nextOffer, Agent: id, Framework: f.id, Resources: free}
		a.offers[o.ID] = o
		ag.offered = ag.offered.Add(free)
		// Count the offer in the framework's share while it is out, so the
		// next agent goes to whoever is then the poorest.
		f.allocated = f.allocated.Add(free)
		out = append(out, *o)
	}
	return out
}

// lowestShare is the unsuppressed framework with the lowest dominant share
// that holds no outstanding offer on agent id.
func (a *Allocator) lowestShare(id AgentID) *framework {
	var best *framework
	var bestShare float64
	for _, f := range a.frameworks {
		if f.suppressed || a.hasOffer(f.id, id) {
			continue
		}
		s := f.allocated.DominantShare(a.total)
		if best == nil || s < bestShare || (s == bestShare && f.seq < best.seq) {
			best, bestShare = f, s
		}
	}
	return best
}

func (a *Allocator) hasOffer(f FrameworkID, ag AgentID) bool {
	for _, o := range a.offers {
		if o.Framework == f && o.Agent == ag {
			return true
		}
	}
	return false
}

// Accept uses part of an offer: used stays allocated to the framework until
// Recover; the rest returns to the pool.
func (a *Allocator) Accept(id OfferID, used Resources) error {
	o, ok := a.offers[id]
	if !ok {
		return fmt.Errorf("allocator: offer %d is not outstanding", id)
	}
	if used.Negative() || !o.Resources.Contains(used) {
		return fmt.Errorf("allocator: offer %d of %s cannot hold %s", id, o.Resources, used)
	}
	delete(a.offers, id)
	ag := a.agents[o.Agent]
	ag.offered = ag.offered.Sub(o.Resources)
	ag.allocated = ag.allocated.Add(used)
	if f, ok := a.frameworks[o.Framework]; ok {
		f.allocated = f.allocated.Sub(o.Resources).Add(used)
	}
	return nil
}

// Decline returns a whole offer to the pool.
func (a *Allocator) Decline(id OfferID) {
	o, ok := a.offers[id]
	if !ok {
		return
	}
	delete(a.offers, id)
	if ag, ok := a.agents[o.Agent]; ok {
		ag.offered = ag.offered.Sub(o.Resources)
	}
	if f, ok := a.frameworks[o.Framework]; ok {
		f.allocated = f.allocated.Sub(o.Resources)
	}
}

// Recover returns resources that a framework's task used on an agent: the
// task ended.
func (a *Allocator) Recover(ag AgentID, f FrameworkID, r Resources) {
	if x, ok := a.agents[ag]; ok {
		x.allocated = x.allocated.Sub(r)
	}
	if x, ok := a.frameworks[f]; ok {
		x.allocated = x.allocated.Sub(r)
	}
}

// Total is the sum of all agents' resources.
func (a *Allocator) Total() Resources { return a.total }

// Free is an agent's resources that are neither offered nor allocated.
func (a *Allocator) Free(id AgentID) (Resources, bool) {
	ag, ok := a.agents[id]
	if !ok {
		return Resources{}, false
	}
	return ag.free(), true
}

// Share is a framework's current dominant share, offers included.
func (a *Allocator) Share(id FrameworkID) float64 {
	f, ok := a.frameworks[id]
	if !ok {
		return 0
	}
	return f.allocated.DominantShare(a.total)
}

func (a *Allocator) sortedOffers() []*Offer {
	os := make([]*Offer, 0, len(a.offers))
	for _, o := range a.offers {
		os = append(os, o)
	}
	slices.SortFunc(os, func(x, y *Offer) int { return cmp.Compare(x.ID, y.ID) })
	return os
}
