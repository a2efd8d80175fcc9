package allocator

import "time"

// offerRec is an outstanding offer as the allocator keeps it: the public
// view and pointers to its agent and framework, so that accepting or
// declining it looks nothing up by name.
type offerRec struct {
	Offer
	seq     uint64 // creation order
	created time.Time
	ag      *agent
	fw      *framework
	gen     uint32 // bumped each time the slot is reused
	live    bool
}

// offerTable holds outstanding offers in a slab of reusable slots. An
// OfferID is the slot's generation in the high 32 bits and the slot in
// the low 32, so a lookup is an index and a generation check, and an ID
// is never reused: a stale ID finds a newer generation and misses. Slots
// are reused last-freed first, so IDs are deterministic.
type offerTable struct {
	pages [][]offerRec // fixed-size pages: growing never moves a record
	n     int          // slots in use or free
	free  []uint32
	seq   uint64
}

// offerPage is small because the coordinator builds an allocator per cycle.
const offerPage = 128

func (t *offerTable) at(slot uint32) *offerRec {
	return &t.pages[slot/offerPage][slot%offerPage]
}

// each calls fn for every live offer, in slot order.
func (t *offerTable) each(fn func(*offerRec)) {
	for slot := range uint32(t.n) {
		if r := t.at(slot); r.live {
			fn(r)
		}
	}
}

func (t *offerTable) add(o Offer, ag *agent, fw *framework, now time.Time) *offerRec {
	var slot uint32
	if n := len(t.free); n > 0 {
		slot = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		if t.n%offerPage == 0 {
			t.pages = append(t.pages, make([]offerRec, offerPage))
		}
		slot = uint32(t.n)
		t.n++
	}
	r := t.at(slot)
	t.seq++
	gen := r.gen + 1
	o.ID = OfferID(uint64(gen)<<32 | uint64(slot))
	*r = offerRec{Offer: o, seq: t.seq, created: now, ag: ag, fw: fw, gen: gen, live: true}
	return r
}

// get is the live offer id names, or nil.
func (t *offerTable) get(id OfferID) *offerRec {
	slot := uint64(id) & (1<<32 - 1)
	if slot >= uint64(t.n) {
		return nil
	}
	r := t.at(uint32(slot))
	if !r.live || r.ID != id {
		return nil
	}
	return r
}

func (t *offerTable) slot(r *offerRec) uint32 { return uint32(uint64(r.ID) & (1<<32 - 1)) }

func (t *offerTable) del(r *offerRec) {
	slot := t.slot(r)
	gen := r.gen
	*r = offerRec{gen: gen}
	t.free = append(t.free, slot)
}
