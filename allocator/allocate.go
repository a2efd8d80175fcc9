package allocator

import (
	"math"
	"time"
)

// tenantHeap is a binary min-heap of tenants keyed by one of their scratch
// keys, ties broken by creation order; each tenant knows its index.
type tenantHeap struct {
	ts    []*tenant
	quota bool // keyed by quotaKey and quotaIdx, else fairKey and fairIdx
}

func (h *tenantHeap) key(t *tenant) float64 {
	if h.quota {
		return t.quotaKey
	}
	return t.fairKey
}

func (h *tenantHeap) idx(t *tenant) *int {
	if h.quota {
		return &t.quotaIdx
	}
	return &t.fairIdx
}

func (h *tenantHeap) less(i, j int) bool {
	ki, kj := h.key(h.ts[i]), h.key(h.ts[j])
	if ki != kj {
		return ki < kj
	}
	return h.ts[i].seq < h.ts[j].seq
}

func (h *tenantHeap) swap(i, j int) {
	h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
	*h.idx(h.ts[i]) = i
	*h.idx(h.ts[j]) = j
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
	n := len(h.ts)
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

func (h *tenantHeap) push(t *tenant) {
	h.ts = append(h.ts, t)
	*h.idx(t) = len(h.ts) - 1
	h.up(len(h.ts) - 1)
}

func (h *tenantHeap) remove(t *tenant) {
	i := *h.idx(t)
	if i < 0 {
		return
	}
	last := len(h.ts) - 1
	if i != last {
		h.swap(i, last)
	}
	h.ts = h.ts[:last]
	*h.idx(t) = -1
	if i != last {
		h.down(i)
		h.up(i)
	}
}

func (h *tenantHeap) fix(t *tenant) {
	if i := *h.idx(t); i >= 0 {
		h.down(i)
		h.up(i)
	}
}

// allocation is the scratch state of one Allocate cycle.
type allocation struct {
	fair, quota tenantHeap
	skipped     []*tenant
	now         time.Time
	out         []Offer
	chunk       []Offer
}

// Allocate offers every agent's free resources and returns the new offers.
// Agents are visited in ID order. On each agent, reserved resources go to
// their tenant first; the unreserved rest goes to one framework of the
// tenant below its guarantee that is furthest from it (quota phase) or,
// when no such tenant can take the agent, of the tenant with the lowest
// weighted dominant share (fair phase). Offers count in shares while they
// are out, so the next agent goes to whoever is then the poorest. No
// tenant is offered more than its limit, and no framework gets a second
// offer on an agent or an offer its decline filters forbid. Ties break on
// registration order, so the result is deterministic.
func (a *Allocator) Allocate() []Offer {
	s := &a.alloc
	s.now = a.cfg.Clock()
	s.out = make([]Offer, 0, len(a.order))
	s.fair.ts, s.quota.ts = s.fair.ts[:0], s.quota.ts[:0]
	s.quota.quota = true
	for _, t := range a.tenants {
		t.fairIdx, t.quotaIdx = -1, -1
		if !t.active() || !t.underLimit() {
			continue
		}
		a.rekey(t)
		s.fair.ts = append(s.fair.ts, t)
		t.fairIdx = len(s.fair.ts) - 1
		if t.quotaKey < 1 {
			s.quota.ts = append(s.quota.ts, t)
			t.quotaIdx = len(s.quota.ts) - 1
		}
	}
	for _, h := range []*tenantHeap{&s.fair, &s.quota} {
		for i := len(h.ts)/2 - 1; i >= 0; i-- {
			h.down(i)
		}
	}
	for _, ag := range a.order {
		if len(s.fair.ts) == 0 {
			break
		}
		if ag.closed {
			continue
		}
		if len(ag.resv) > 0 {
			a.offerReserved(ag)
		}
		free := ag.unreservedFree()
		if !free.offerable() {
			continue
		}
		if !a.offerFrom(&s.quota, ag, free) {
			a.offerFrom(&s.fair, ag, free)
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
		if t == nil || !t.active() {
			continue
		}
		amt := res.free().headroomCap(t.allocated, t.Limit)
		if !amt.offerable() {
			continue
		}
		if f := a.pickFramework(t, ag, amt); f != nil {
			a.offer(f, ag, amt, amt)
		}
	}
}

// offerFrom offers free, the unreserved free resources of ag, to the first
// tenant of h that can take it, and reports whether one did.
func (a *Allocator) offerFrom(h *tenantHeap, ag *agent, free Resources) bool {
	s := &a.alloc
	s.skipped = s.skipped[:0]
	defer func() {
		for _, t := range s.skipped {
			h.push(t)
		}
	}()
	for len(h.ts) > 0 {
		t := h.ts[0]
		amt := free.headroomCap(t.allocated, t.Limit)
		if !amt.offerable() {
			// At its limit: nothing more this cycle.
			s.fair.remove(t)
			s.quota.remove(t)
			continue
		}
		f := a.pickFramework(t, ag, amt)
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

// pickFramework is t's framework with the lowest dominant share that may
// be offered amt on ag, or nil.
func (a *Allocator) pickFramework(t *tenant, ag *agent, amt Resources) *framework {
	var best *framework
	var bestShare float64
	for _, f := range t.frameworks {
		if f.suppressed || ag.hasOffer(f.id) {
			continue
		}
		if len(f.filters) > 0 && a.filtered(f, ag.id, amt) {
			continue
		}
		if len(t.frameworks) == 1 {
			return f
		}
		s := f.allocated.DominantShare(a.total)
		if best == nil || s < bestShare {
			best, bestShare = f, s
		}
	}
	return best
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

func (ag *agent) hasOffer(f FrameworkID) bool {
	for _, o := range ag.offers {
		if o.Framework == f {
			return true
		}
	}
	return false
}

// offer lends amt of ag, of which reserved is from f's tenant's
// reservation, to f.
func (a *Allocator) offer(f *framework, ag *agent, amt, reserved Resources) {
	s := &a.alloc
	if len(s.chunk) == cap(s.chunk) {
		s.chunk = make([]Offer, 0, 1024)
	}
	a.nextOffer++
	s.chunk = append(s.chunk, Offer{ID: a.nextOffer, Agent: ag.id, Framework: f.id, Resources: amt, Reserved: reserved, created: s.now})
	o := &s.chunk[len(s.chunk)-1]
	a.offers[o.ID] = o
	if a.cfg.OfferTimeout > 0 {
		a.offerQueue = append(a.offerQueue, o.ID)
	}
	ag.offers = append(ag.offers, o)
	ag.offered = ag.offered.Add(amt)
	if !reserved.IsZero() {
		res := ag.resv[f.tenant.name]
		res.offered = res.offered.Add(reserved)
		ag.resvOff = ag.resvOff.Add(reserved)
	}
	f.allocated = f.allocated.Add(amt)
	t := f.tenant
	t.allocated = t.allocated.Add(amt)
	s.out = append(s.out, *o)
	if t.fairIdx >= 0 || t.quotaIdx >= 0 {
		a.rekey(t)
		s.fair.fix(t)
		if t.quotaIdx >= 0 {
			if t.quotaKey >= 1 {
				s.quota.remove(t)
			} else {
				s.quota.fix(t)
			}
		}
	}
}

// rekey sets t's heap keys from its allocation.
func (a *Allocator) rekey(t *tenant) {
	t.fairKey = t.allocated.DominantShare(a.total) / t.Weight
	if t.Guarantee.IsZero() {
		t.quotaKey = math.Inf(1)
	} else {
		t.quotaKey = t.allocated.satisfaction(t.Guarantee)
	}
}

// active reports whether any of t's frameworks wants offers.
func (t *tenant) active() bool {
	for _, f := range t.frameworks {
		if !f.suppressed {
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
