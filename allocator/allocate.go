package allocator

import (
	"math"
	"time"
)

// tenantHeap is a binary min-heap of tenants keyed by share, ties broken
// by creation order. Entries carry their keys so that comparisons touch
// only the heap's own array; each tenant knows its index in each heap.
type tenantHeap struct {
	es    []heapEntry
	which int // index into tenant.heapIdx
}

type heapEntry struct {
	key float64
	seq uint64
	t   *tenant
}

func (h *tenantHeap) less(i, j int) bool {
	a, b := &h.es[i], &h.es[j]
	if a.key != b.key {
		return a.key < b.key
	}
	return a.seq < b.seq
}

func (h *tenantHeap) swap(i, j int) {
	h.es[i], h.es[j] = h.es[j], h.es[i]
	h.es[i].t.heapIdx[h.which] = i
	h.es[j].t.heapIdx[h.which] = j
}

func (h *tenantHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(i, p) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

func (h *tenantHeap) down(i int) {
	n := len(h.es)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.swap(i, m)
		i = m
	}
}

func (h *tenantHeap) len() int           { return len(h.es) }
func (h *tenantHeap) top() *tenant       { return h.es[0].t }
func (h *tenantHeap) has(t *tenant) bool { return t.heapIdx[h.which] >= 0 }

// init empties h for a new cycle.
func (h *tenantHeap) init(which int) {
	h.es, h.which = h.es[:0], which
}

// add appends t with key without restoring the heap order (heapify).
func (h *tenantHeap) add(t *tenant, key float64) {
	h.es = append(h.es, heapEntry{key, t.seq, t})
	t.heapIdx[h.which] = len(h.es) - 1
}

func (h *tenantHeap) heapify() {
	for i := len(h.es)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *tenantHeap) push(t *tenant, key float64) {
	h.add(t, key)
	h.up(len(h.es) - 1)
}

func (h *tenantHeap) remove(t *tenant) {
	i := t.heapIdx[h.which]
	if i < 0 {
		return
	}
	last := len(h.es) - 1
	if i != last {
		h.swap(i, last)
	}
	h.es = h.es[:last]
	t.heapIdx[h.which] = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

// update sets t's key and restores the order.
func (h *tenantHeap) update(t *tenant, key float64) {
	i := t.heapIdx[h.which]
	if i < 0 {
		return
	}
	old := h.es[i].key
	h.es[i].key = key
	switch {
	case key > old:
		h.down(i)
	case key < old:
		h.up(i)
	}
}

// allocation is the scratch state of one Allocate cycle.
type allocation struct {
	fair, quota tenantHeap
	skipped     []*tenant
	now         time.Time
	out         []Offer
	// avail is the unreserved free resources not yet offered this cycle;
	// need is what guarantees still lack (the quota headroom), summed
	// over all tenants, active or not.
	avail, need Resources
}

// Allocate offers every agent's free resources and returns the new offers.
// Agents are visited in ID order. On each agent, reserved resources go to
// their tenant first; the unreserved rest goes to one framework of the
// tenant below its guarantee that is furthest from it (quota phase) or,
// when no such tenant can take the agent, of the tenant with the lowest
// weighted dominant share (fair phase). Offers count in shares while they
// are out, so the next agent goes to whoever is then the poorest. No
// tenant is offered more than its limit, no offer leaves less unoffered
// than other tenants' guarantees lack (the quota headroom), and a cut
// offer leaves the rest of the agent to the next tenant. No framework
// gets a second offer on an agent or an offer its decline filters forbid.
// Ties break on registration order, so the result is deterministic.
func (a *Allocator) Allocate() []Offer {
	s := &a.alloc
	s.now = a.cfg.Clock()
	a.sortAgents()
	s.out = make([]Offer, 0, len(a.order))
	s.fair.init(fairHeap)
	s.quota.init(quotaHeap)
	s.avail, s.need = Resources{}, Resources{}
	for _, ag := range a.order {
		if !ag.closed {
			s.avail = s.avail.Add(ag.unreservedFree())
		}
	}
	for _, t := range a.tenants {
		s.need = s.need.Add(t.need())
		t.heapIdx = [2]int{-1, -1}
		if !t.active() || !t.underLimit() {
			continue
		}
		fk, qk := a.keys(t)
		s.fair.add(t, fk)
		if qk < 1 {
			s.quota.add(t, qk)
		}
	}
	s.fair.heapify()
	s.quota.heapify()
	for _, ag := range a.order {
		if s.fair.len() == 0 {
			break
		}
		if ag.closed {
			continue
		}
		if len(ag.resv) > 0 {
			a.offerReserved(ag)
		}
		// An offer cut to its tenant's limit leaves the rest of the
		// agent for the next tenant.
		for free := ag.unreservedFree(); free.offerable(); free = ag.unreservedFree() {
			if !a.offerFrom(&s.quota, ag, free) && !a.offerFrom(&s.fair, ag, free) {
				break
			}
		}
	}
	out := s.out
	s.out, s.skipped = nil, s.skipped[:0]
	return out
}

// offerReserved offers each tenant's free reservation on ag to one of its
// frameworks.
func (a *Allocator) offerReserved(ag *agent) {
	for _, name := range ag.resvNames {
		res := ag.resv[name]
		t := a.tenants[name]
		if t == nil {
			continue
		}
		// Offers cut to a framework's demand leave the rest of the
		// reservation for its next task or its tenant's next framework.
		for t.active() {
			amt := res.free().headroomCap(t.allocated, t.Limit)
			if !amt.offerable() {
				break
			}
			f, amt := a.pickFramework(t, ag, amt)
			if f == nil {
				break
			}
			a.offer(f, ag, amt, amt)
		}
	}
}

// offerFrom offers free, the unreserved free resources of ag, to the first
// tenant of h that can take it, and reports whether one did.
func (a *Allocator) offerFrom(h *tenantHeap, ag *agent, free Resources) bool {
	s := &a.alloc
	quota := h.which == quotaHeap
	if !quota && !free.Min(s.avail.Sub(s.need).Max(Resources{})).offerable() {
		// The rest is held back for guarantees. Tenants that lack some
		// of theirs were offered the agent in the quota phase.
		return false
	}
	s.skipped = s.skipped[:0]
	defer func() {
		for _, t := range s.skipped {
			fk, qk := a.keys(t)
			if quota {
				h.push(t, qk)
			} else {
				h.push(t, fk)
			}
		}
	}()
	for h.len() > 0 {
		t := h.top()
		amt := free.headroomCap(t.allocated, t.Limit)
		if !amt.offerable() {
			// At its limit: nothing more this cycle.
			s.fair.remove(t)
			s.quota.remove(t)
			continue
		}
		amt = amt.Min(s.headroomCap(t, quota))
		var f *framework
		if amt.offerable() {
			f, amt = a.pickFramework(t, ag, amt)
		}
		if f == nil {
			h.remove(t)
			s.skipped = append(s.skipped, t)
			continue
		}
		a.offer(f, ag, amt, Resources{})
		return true
	}
	return false
}

// headroomCap is the most of the unoffered unreserved resources that t
// may be offered and leave what other tenants' guarantees lack: in the
// quota phase, never less than what t's own guarantee lacks.
func (s *allocation) headroomCap(t *tenant, quota bool) Resources {
	own := t.need()
	c := s.avail.Sub(s.need.Sub(own)).Max(Resources{})
	if quota {
		c = c.Max(own)
	}
	return c
}

// pickFramework is t's framework with the lowest dominant share that may
// be offered amt on ag, or nil, and amt cut to the framework's demand.
func (a *Allocator) pickFramework(t *tenant, ag *agent, amt Resources) (*framework, Resources) {
	var best *framework
	var bestShare float64
	var bestAmt Resources
	for _, f := range t.frameworks {
		if !f.wantsMore() {
			continue
		}
		fa := amt
		if f.demand.Task.IsZero() {
			if a.hasOffer(ag, f) {
				continue
			}
		} else {
			fa = fa.Min(f.demand.Task)
		}
		if len(f.filters) > 0 && a.filtered(f, ag.id, fa) {
			continue
		}
		if len(t.frameworks) == 1 {
			return f, fa
		}
		s := f.allocated.DominantShare(a.total)
		if best == nil || s < bestShare {
			best, bestShare, bestAmt = f, s, fa
		}
	}
	return best, bestAmt
}

// wantsMore reports whether f may be offered more: it is not suppressed
// and holds fewer offers than it asks for.
func (f *framework) wantsMore() bool {
	return !f.suppressed && (f.demand.Tasks == 0 || f.offers < f.demand.Tasks)
}

// filtered reports whether f's decline filter on agent forbids offering
// amt now, dropping the filter if it has expired.
func (a *Allocator) filtered(f *framework, agent AgentID, amt Resources) bool {
	flt, ok := f.filters[agent]
	if !ok {
		return false
	}
	if !flt.until.IsZero() && !a.alloc.now.Before(flt.until) {
		delete(f.filters, agent)
		return false
	}
	return flt.blocks(amt, a.alloc.now)
}

func (a *Allocator) hasOffer(ag *agent, f *framework) bool {
	for _, slot := range ag.offers {
		if a.offers.at(slot).fw == f {
			return true
		}
	}
	return false
}

// offer lends amt of ag, of which reserved is from f's tenant's
// reservation, to f.
func (a *Allocator) offer(f *framework, ag *agent, amt, reserved Resources) {
	s := &a.alloc
	o := a.offers.add(Offer{Agent: ag.id, Framework: f.id, Resources: amt, Reserved: reserved}, ag, f, s.now)
	if a.cfg.OfferTimeout > 0 {
		a.offerQueue = append(a.offerQueue, o.ID)
	}
	ag.offers = append(ag.offers, a.offers.slot(o))
	ag.offered = ag.offered.Add(amt)
	if !reserved.IsZero() {
		res := ag.resv[f.tenant.name]
		res.offered = res.offered.Add(reserved)
		ag.resvOff = ag.resvOff.Add(reserved)
	}
	f.allocated = f.allocated.Add(amt)
	f.offers++
	t := f.tenant
	s.need = s.need.Sub(t.need())
	t.allocated = t.allocated.Add(amt)
	s.need = s.need.Add(t.need())
	s.avail = s.avail.Sub(amt.Sub(reserved))
	s.out = append(s.out, o.Offer)
	if (s.fair.has(t) || s.quota.has(t)) && !f.wantsMore() && !t.active() {
		// Its frameworks hold all the offers they asked for.
		s.fair.remove(t)
		s.quota.remove(t)
	}
	if s.fair.has(t) || s.quota.has(t) {
		fk, qk := a.keys(t)
		s.fair.update(t, fk)
		if qk >= 1 {
			s.quota.remove(t)
		} else {
			s.quota.update(t, qk)
		}
	}
}

const (
	fairHeap  = 0
	quotaHeap = 1
)

// keys are t's heap keys from its allocation: its weighted dominant share
// and how far it is to its guarantee (1 or more: satisfied or none).
func (a *Allocator) keys(t *tenant) (fair, quota float64) {
	fair = t.allocated.DominantShare(a.total) / t.Weight
	if t.Guarantee.IsZero() {
		return fair, math.Inf(1)
	}
	return fair, t.allocated.satisfaction(t.Guarantee)
}

// need is what t's guarantee still lacks, in the resources it names.
func (t *tenant) need() Resources {
	if t.Guarantee.IsZero() {
		return Resources{}
	}
	return t.Guarantee.Sub(t.allocated).Max(Resources{})
}

// active reports whether any of t's frameworks wants offers.
func (t *tenant) active() bool {
	for _, f := range t.frameworks {
		if f.wantsMore() {
			return true
		}
	}
	return false
}

// underLimit reports whether t may be offered more CPU and memory.
func (t *tenant) underLimit() bool {
	big := Resources{CPU: math.MaxInt64, Mem: math.MaxInt64, Disk: math.MaxInt64}
	return big.headroomCap(t.allocated, t.Limit).offerable()
}
