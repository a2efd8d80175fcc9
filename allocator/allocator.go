package allocator

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// AgentID names an agent.
type AgentID string

// FrameworkID names a framework: one job's scheduler.
type FrameworkID string

// OfferID names an outstanding offer.
type OfferID uint64

// Offer lends one agent's free resources to one framework until the
// framework accepts (part of) it or declines it, or the allocator rescinds
// it (RemoveAgent, Expire).
type Offer struct {
	ID        OfferID
	Agent     AgentID
	Framework FrameworkID
	Resources Resources
	// Reserved is the part of Resources that comes from the agent's
	// reservation for the framework's tenant; an accepted offer uses it
	// first.
	Reserved Resources
}

// Config configures an allocator. The zero value is valid.
type Config struct {
	// Clock tells the time for decline filters and offer timeouts. Nil
	// means a clock that never advances, so that filters with a duration
	// never expire and offers never time out.
	Clock func() time.Time
	// OfferTimeout is how long an offer may stay outstanding before Expire
	// rescinds it; zero means never.
	OfferTimeout time.Duration
}

// Filter is what a framework asks for when it declines an offer.
type Filter struct {
	// Duration is how long the agent is not offered to the framework
	// again (when MinResources is zero), or how long MinResources holds.
	// Zero with a non-zero MinResources means until Revive.
	Duration time.Duration
	// MinResources, if not zero, lets the agent be offered to the
	// framework only when the offer contains at least this much.
	MinResources Resources
}

type filter struct {
	until time.Time // zero: until Revive
	min   Resources
}

// blocks reports whether f forbids offering r at now.
func (f filter) blocks(r Resources, now time.Time) bool {
	if !f.until.IsZero() && !now.Before(f.until) {
		return false
	}
	return f.min.IsZero() || !r.Contains(f.min)
}

type agent struct {
	id        AgentID
	total     Resources
	offered   Resources // all outstanding offers, reserved parts included
	allocated Resources // all accepted resources, reserved parts included
	resv      map[string]*reservation
	resvNames []string  // sorted keys of resv
	resvSum   Resources // the sums over resv
	resvOff   Resources
	resvAlloc Resources
	offers    []uint32 // slots of outstanding offers, oldest first
	closed    bool     // Simulate: no remaining task fits, skip it
	gone      bool     // removed, still in Allocator.order until sortAgents
	// filteredBy lists the frameworks that hold (or held) a decline
	// filter on the agent, so that removing it touches only them.
	filteredBy []*framework
}

// reservation is the part of an agent set aside for one tenant.
type reservation struct {
	amount, offered, allocated Resources
}

func (r *reservation) free() Resources { return r.amount.Sub(r.offered).Sub(r.allocated) }

func (a *agent) free() Resources { return a.total.Sub(a.offered).Sub(a.allocated) }

// unreservedFree is what the agent can offer to any tenant.
func (a *agent) unreservedFree() Resources {
	used := a.offered.Sub(a.resvOff).Add(a.allocated.Sub(a.resvAlloc))
	return a.total.Sub(a.resvSum).Sub(used)
}

type framework struct {
	id         FrameworkID
	tenant     *tenant
	allocated  Resources
	suppressed bool
	demand     Demand
	offers     int    // outstanding
	seq        uint64 // registration order, the tie-break
	filters    map[AgentID]filter
}

// Allocator is the offer allocator. It is not safe for concurrent use: one
// goroutine (the coordinator's) owns it.
type Allocator struct {
	cfg        Config
	agents     map[AgentID]*agent
	order      []*agent // sorted by ID, as of the last sortAgents
	added      []*agent // since the last sortAgents
	removed    bool     // some agent in order is gone
	frameworks map[FrameworkID]*framework
	tenants    map[string]*tenant
	offers     offerTable
	offerQueue []OfferID // in creation order, for Expire
	nextSeq    uint64
	total      Resources
	alloc      allocation // scratch for Allocate
}

// New returns an allocator with no agents and no frameworks, a clock that
// never advances and no offer timeout.
func New() *Allocator {
	a, _ := NewWithConfig(Config{})
	return a
}

// NewWithConfig returns an allocator configured by cfg, which it copies.
func NewWithConfig(cfg Config) (*Allocator, error) {
	if cfg.OfferTimeout < 0 {
		return nil, fmt.Errorf("allocator: negative offer timeout %v", cfg.OfferTimeout)
	}
	if cfg.Clock == nil {
		cfg.Clock = func() time.Time { return time.Time{} }
	}
	return &Allocator{
		cfg:        cfg,
		agents:     make(map[AgentID]*agent),
		frameworks: make(map[FrameworkID]*framework),
		tenants:    make(map[string]*tenant),
	}, nil
}

// AddAgent adds an agent's resources to the pool.
func (a *Allocator) AddAgent(id AgentID, total Resources) error {
	return a.AddAgentWithReservations(id, total, nil)
}

// AddAgentWithReservations adds an agent whose configuration reserves parts
// of it for tenants (static reservations). Unknown tenants are created
// with the default weight.
func (a *Allocator) AddAgentWithReservations(id AgentID, total Resources, resv map[string]Resources) error {
	if _, ok := a.agents[id]; ok {
		return fmt.Errorf("allocator: agent %s already added", id)
	}
	if total.Negative() {
		return fmt.Errorf("allocator: agent %s has negative resources %s", id, total)
	}
	ag := &agent{id: id, total: total}
	for name, r := range resv {
		if r.Negative() {
			return fmt.Errorf("allocator: agent %s: negative reservation %s for %q", id, r, name)
		}
		if r.IsZero() {
			continue
		}
		if ag.resv == nil {
			ag.resv = map[string]*reservation{}
		}
		ag.resv[name] = &reservation{amount: r}
		ag.resvNames = append(ag.resvNames, name)
		ag.resvSum = ag.resvSum.Add(r)
	}
	if !total.Contains(ag.resvSum) {
		return fmt.Errorf("allocator: agent %s: reservations %s exceed total %s", id, ag.resvSum, total)
	}
	slices.Sort(ag.resvNames)
	for _, name := range ag.resvNames {
		a.tenantOrDefault(name)
	}
	a.agents[id] = ag
	a.added = append(a.added, ag)
	a.total = a.total.Add(total)
	return nil
}

// sortAgents brings order up to date with the agents added and removed
// since the last call: events stay O(1), and the next cycle pays one
// linear merge.
func (a *Allocator) sortAgents() {
	if len(a.added) == 0 && !a.removed {
		return
	}
	if a.removed {
		a.order = slices.DeleteFunc(a.order, func(ag *agent) bool { return ag.gone })
		a.removed = false
	}
	added := slices.DeleteFunc(a.added, func(ag *agent) bool { return ag.gone })
	a.added = nil
	if len(added) == 0 {
		return
	}
	byID := func(x, y *agent) int { return cmp.Compare(x.id, y.id) }
	slices.SortFunc(added, byID)
	merged := make([]*agent, 0, len(a.order)+len(added))
	i, j := 0, 0
	for i < len(a.order) && j < len(added) {
		if byID(a.order[i], added[j]) < 0 {
			merged = append(merged, a.order[i])
			i++
		} else {
			merged = append(merged, added[j])
			j++
		}
	}
	merged = append(merged, a.order[i:]...)
	a.order = append(merged, added[j:]...)
}

// RemoveAgent removes an agent and rescinds its outstanding offers, which it
// returns. The caller recovers the resources of the tasks that ran on it
// (Recover) as it marks them lost.
func (a *Allocator) RemoveAgent(id AgentID) []Offer {
	ag, ok := a.agents[id]
	if !ok {
		return nil
	}
	recs := make([]*offerRec, 0, len(ag.offers))
	for _, slot := range ag.offers {
		recs = append(recs, a.offers.at(slot))
	}
	rescinded := a.rescind(recs)
	// Tasks still running on the agent leave tenants' and frameworks'
	// shares with it only when the caller recovers them.
	a.total = a.total.Sub(ag.total)
	delete(a.agents, id)
	ag.gone = true
	a.removed = true
	for _, f := range ag.filteredBy {
		delete(f.filters, id)
	}
	return rescinded
}

// rescind declines the offers and returns them, oldest first.
func (a *Allocator) rescind(recs []*offerRec) []Offer {
	if len(recs) == 0 {
		return nil
	}
	slices.SortFunc(recs, func(x, y *offerRec) int { return cmp.Compare(x.seq, y.seq) })
	out := make([]Offer, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.Offer)
	}
	for _, o := range out {
		a.Decline(o.ID)
	}
	return out
}

// AddFramework registers a framework under a role, which names its tenant.
// A role that names no tenant gets one, with weight 1 and no quota.
func (a *Allocator) AddFramework(id FrameworkID, role string) error {
	if _, ok := a.frameworks[id]; ok {
		return fmt.Errorf("allocator: framework %s already added", id)
	}
	a.nextSeq++
	t := a.tenantOrDefault(role)
	f := &framework{id: id, tenant: t, seq: a.nextSeq, filters: map[AgentID]filter{}}
	a.frameworks[id] = f
	t.frameworks = append(t.frameworks, f)
	return nil
}

// RemoveFramework unregisters a framework; its outstanding offers return to
// the pool, and its running tasks leave its tenant's share. The caller
// still recovers their resources on the agents as they end.
func (a *Allocator) RemoveFramework(id FrameworkID) {
	f, ok := a.frameworks[id]
	if !ok {
		return
	}
	var mine []*offerRec
	a.offers.each(func(r *offerRec) {
		if r.fw == f {
			mine = append(mine, r)
		}
	})
	a.rescind(mine)
	f.tenant.allocated = f.tenant.allocated.Sub(f.allocated)
	f.tenant.frameworks = slices.DeleteFunc(f.tenant.frameworks, func(x *framework) bool { return x == f })
	delete(a.frameworks, id)
}

// Demand is what a framework asks to be offered: Tasks tasks of size Task.
// The zero Demand is Mesos' behaviour: whole agents.
type Demand struct {
	// Task, if not zero, cuts each offer to at most one task, and lets an
	// agent make several offers to the framework in one cycle. It must
	// hold some CPU and some memory.
	Task Resources
	// Tasks, if not zero, is the most offers the framework holds at once.
	Tasks int
}

// SetDemand tells the allocator what a framework can use. A job scheduler
// that knows its pending tasks asks for no more, so that its share is not
// inflated by resources it would only decline, the rest of each agent
// goes to other tenants in the same cycle, and a cycle fills the cluster
// as DRF's progressive filling does, task by task. The framework updates
// its demand as tasks start and end.
func (a *Allocator) SetDemand(id FrameworkID, d Demand) error {
	f, ok := a.frameworks[id]
	if !ok {
		return fmt.Errorf("allocator: set demand of framework %s: unknown framework", id)
	}
	if d.Task.Negative() || (!d.Task.IsZero() && !d.Task.offerable()) || d.Tasks < 0 {
		return fmt.Errorf("allocator: demand %d × %s of framework %s: a task must hold some CPU and some memory: %w", d.Tasks, d.Task, id, ErrInvalid)
	}
	f.demand = d
	return nil
}

// Suppress stops offers to a framework until Revive.
func (a *Allocator) Suppress(id FrameworkID) {
	if f, ok := a.frameworks[id]; ok {
		f.suppressed = true
	}
}

// Revive resumes offers to a suppressed framework and clears its decline
// filters, as Mesos does.
func (a *Allocator) Revive(id FrameworkID) {
	if f, ok := a.frameworks[id]; ok {
		f.suppressed = false
		clear(f.filters)
	}
}

// Accept uses part of an offer: used stays allocated to the framework until
// Recover; the rest returns to the pool. Used takes the offer's reserved
// part first.
func (a *Allocator) Accept(id OfferID, used Resources) error {
	o := a.offers.get(id)
	if o == nil {
		return fmt.Errorf("allocator: offer %d is not outstanding", id)
	}
	if used.Negative() || !o.Resources.Contains(used) {
		return fmt.Errorf("allocator: offer %d of %s cannot hold %s", id, o.Resources, used)
	}
	ag, f, reserved := o.ag, o.fw, o.Reserved
	a.removeOffer(o)
	ag.allocated = ag.allocated.Add(used)
	if !reserved.IsZero() {
		res := ag.resv[f.tenant.name]
		fromResv := used.Min(reserved)
		res.allocated = res.allocated.Add(fromResv)
		ag.resvAlloc = ag.resvAlloc.Add(fromResv)
	}
	f.allocated = f.allocated.Add(used)
	f.tenant.allocated = f.tenant.allocated.Add(used)
	return nil
}

// removeOffer takes an outstanding offer's resources off its agent,
// framework and tenant.
func (a *Allocator) removeOffer(o *offerRec) {
	ag, f := o.ag, o.fw
	slot := a.offers.slot(o)
	if i := slices.Index(ag.offers, slot); i >= 0 {
		ag.offers = slices.Delete(ag.offers, i, i+1)
	}
	ag.offered = ag.offered.Sub(o.Resources)
	if !o.Reserved.IsZero() {
		res := ag.resv[f.tenant.name]
		res.offered = res.offered.Sub(o.Reserved)
		ag.resvOff = ag.resvOff.Sub(o.Reserved)
	}
	f.allocated = f.allocated.Sub(o.Resources)
	f.tenant.allocated = f.tenant.allocated.Sub(o.Resources)
	f.offers--
	a.offers.del(o)
}

// Decline returns a whole offer to the pool.
func (a *Allocator) Decline(id OfferID) {
	if o := a.offers.get(id); o != nil {
		a.removeOffer(o)
	}
}

// DeclineWithFilter returns a whole offer to the pool and filters the
// offer's agent out of the framework's next offers as f says.
func (a *Allocator) DeclineWithFilter(id OfferID, f Filter) error {
	o := a.offers.get(id)
	if o == nil {
		return fmt.Errorf("allocator: offer %d is not outstanding", id)
	}
	if f.Duration < 0 || f.MinResources.Negative() {
		return fmt.Errorf("allocator: decline offer %d: invalid filter %+v", id, f)
	}
	fw, ag, agentID := o.fw, o.ag, o.Agent
	a.removeOffer(o)
	if (f.Duration > 0 || !f.MinResources.IsZero()) && !slices.Contains(ag.filteredBy, fw) {
		ag.filteredBy = append(ag.filteredBy, fw)
	}
	switch {
	case f.Duration > 0:
		fw.filters[agentID] = filter{until: a.cfg.Clock().Add(f.Duration), min: f.MinResources}
	case !f.MinResources.IsZero():
		fw.filters[agentID] = filter{min: f.MinResources}
	}
	return nil
}

// Expire rescinds the offers that have been outstanding for OfferTimeout or
// longer and returns them, oldest first.
func (a *Allocator) Expire() []Offer {
	if a.cfg.OfferTimeout <= 0 {
		return nil
	}
	now := a.cfg.Clock()
	var out []Offer
	i := 0
	for ; i < len(a.offerQueue); i++ {
		o := a.offers.get(a.offerQueue[i])
		if o == nil {
			continue
		}
		if now.Sub(o.created) < a.cfg.OfferTimeout {
			break
		}
		out = append(out, o.Offer)
		a.removeOffer(o)
	}
	a.offerQueue = a.offerQueue[i:]
	return out
}

// Recover returns resources that a framework's task used on an agent: the
// task ended. They go back to the reservation of the framework's tenant
// first, if the agent has one.
func (a *Allocator) Recover(ag AgentID, f FrameworkID, r Resources) {
	x, ok := a.agents[ag]
	fw, fok := a.frameworks[f]
	if fok {
		fw.allocated = fw.allocated.Sub(r)
		fw.tenant.allocated = fw.tenant.allocated.Sub(r)
	}
	if !ok {
		return
	}
	x.allocated = x.allocated.Sub(r)
	if len(x.resv) == 0 {
		return
	}
	// The tenant's own reservation gets the resources back first; what
	// the unreserved part cannot account for (a framework already
	// removed) comes off reservations in name order.
	if fok {
		if res, ok := x.resv[fw.tenant.name]; ok {
			x.recoverReserved(res, r)
		}
	}
	deficit := x.resvAlloc.Sub(x.allocated).Max(Resources{})
	for _, name := range x.resvNames {
		if deficit.IsZero() {
			break
		}
		deficit = x.recoverReserved(x.resv[name], deficit)
	}
}

func (a *agent) recoverReserved(res *reservation, r Resources) Resources {
	back := r.Min(res.allocated)
	res.allocated = res.allocated.Sub(back)
	a.resvAlloc = a.resvAlloc.Sub(back)
	return r.Sub(back)
}

// Reserve sets aside r of an agent's free, unreserved resources for a
// tenant (a dynamic reservation).
func (a *Allocator) Reserve(id AgentID, tenantName string, r Resources) error {
	ag, ok := a.agents[id]
	if !ok {
		return fmt.Errorf("allocator: reserve on agent %s: %w", id, ErrUnknownAgent)
	}
	if _, ok := a.tenants[tenantName]; !ok {
		return fmt.Errorf("allocator: reserve for tenant %q: %w", tenantName, ErrUnknownTenant)
	}
	if r.Negative() || r.IsZero() {
		return fmt.Errorf("allocator: reserve %s on agent %s: %w", r, id, ErrInvalid)
	}
	if free := ag.unreservedFree(); !free.Contains(r) {
		return fmt.Errorf("allocator: reserve %s on agent %s for %q: only %s is unreserved and neither offered nor allocated: %w",
			r, id, tenantName, free, ErrInsufficient)
	}
	res, ok := ag.resv[tenantName]
	if !ok {
		res = &reservation{}
		if ag.resv == nil {
			ag.resv = map[string]*reservation{}
		}
		ag.resv[tenantName] = res
		i, _ := slices.BinarySearch(ag.resvNames, tenantName)
		ag.resvNames = slices.Insert(ag.resvNames, i, tenantName)
	}
	res.amount = res.amount.Add(r)
	ag.resvSum = ag.resvSum.Add(r)
	return nil
}

// Unreserve returns r of a tenant's reservation on an agent to the
// unreserved pool. Reserved resources the tenant is using stay its own,
// now unreserved.
func (a *Allocator) Unreserve(id AgentID, tenantName string, r Resources) error {
	ag, ok := a.agents[id]
	if !ok {
		return fmt.Errorf("allocator: unreserve on agent %s: %w", id, ErrUnknownAgent)
	}
	res, ok := ag.resv[tenantName]
	if !ok {
		return fmt.Errorf("allocator: unreserve on agent %s: tenant %q has no reservation: %w", id, tenantName, ErrInsufficient)
	}
	if r.Negative() || r.IsZero() {
		return fmt.Errorf("allocator: unreserve %s on agent %s: %w", r, id, ErrInvalid)
	}
	if !res.amount.Contains(r) {
		return fmt.Errorf("allocator: unreserve %s on agent %s for %q: only %s is reserved: %w", r, id, tenantName, res.amount, ErrInsufficient)
	}
	kept := res.amount.Sub(r)
	if !kept.Contains(res.offered) {
		return fmt.Errorf("allocator: unreserve %s on agent %s for %q: reserved resources are in outstanding offers: %w", r, id, tenantName, ErrInsufficient)
	}
	// Allocated reserved resources beyond what stays reserved become the
	// tenant's unreserved allocation.
	moved := res.allocated.Sub(res.allocated.Min(kept.Sub(res.offered)))
	res.allocated = res.allocated.Sub(moved)
	ag.resvAlloc = ag.resvAlloc.Sub(moved)
	res.amount = res.amount.Sub(r)
	ag.resvSum = ag.resvSum.Sub(r)
	if res.amount.IsZero() {
		delete(ag.resv, tenantName)
		ag.resvNames = slices.DeleteFunc(ag.resvNames, func(n string) bool { return n == tenantName })
	}
	return nil
}

// Errors that callers may branch on, wrapped with the operation.
var (
	ErrUnknownAgent  = errors.New("unknown agent")
	ErrUnknownTenant = errors.New("unknown tenant")
	ErrInsufficient  = errors.New("insufficient resources")
	ErrInvalid       = errors.New("invalid argument")
)

// Total is the sum of all agents' resources.
func (a *Allocator) Total() Resources { return a.total }

// Free is an agent's resources that are neither offered nor allocated,
// reserved ones included.
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

// Use allocates r on an agent to a framework without an offer: a task
// that is known to run there already, as when a coordinator rebuilds its
// books from its replicated state. Like an accepted offer, it takes the
// tenant's reservation on the agent first. A framework that is gone (its
// job ended while the task ran) holds nothing; the agent still does.
func (a *Allocator) Use(id AgentID, f FrameworkID, r Resources) error {
	ag, ok := a.agents[id]
	if !ok {
		return fmt.Errorf("allocator: use %s on agent %s: %w", r, id, ErrUnknownAgent)
	}
	if r.Negative() {
		return fmt.Errorf("allocator: use %s on agent %s: negative resources: %w", r, id, ErrInvalid)
	}
	ag.allocated = ag.allocated.Add(r)
	fw, ok := a.frameworks[f]
	if !ok {
		return nil
	}
	if res := ag.resv[fw.tenant.name]; res != nil {
		fromResv := r.Min(res.amount.Sub(res.offered).Sub(res.allocated).Max(Resources{}))
		res.allocated = res.allocated.Add(fromResv)
		ag.resvAlloc = ag.resvAlloc.Add(fromResv)
	}
	fw.allocated = fw.allocated.Add(r)
	fw.tenant.allocated = fw.tenant.allocated.Add(r)
	return nil
}

// SetFilter keeps an agent out of a framework's offers until a time, as a
// decline with a filter would: the filter of an earlier cycle, restored.
func (a *Allocator) SetFilter(f FrameworkID, id AgentID, until time.Time) {
	fw, fok := a.frameworks[f]
	ag, aok := a.agents[id]
	if !fok || !aok {
		return
	}
	if !slices.Contains(ag.filteredBy, fw) {
		ag.filteredBy = append(ag.filteredBy, fw)
	}
	fw.filters[id] = filter{until: until}
}
