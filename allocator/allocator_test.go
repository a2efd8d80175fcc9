package allocator

import "testing"

func TestResourcesArithmetic(t *testing.T) {
	a := Resources{CPU: 3000, Mem: 1024, Disk: 10}
	b := Resources{CPU: 1000, Mem: 1024}
	if got := a.Sub(b).Add(b); got != a {
		t.Fatalf("a-b+b = %v, want %v", got, a)
	}
	if !a.Contains(b) || b.Contains(a) {
		t.Fatal("Contains is wrong")
	}
	if s := (Resources{CPU: 1000, Mem: 4096}).DominantShare(Resources{CPU: 9000, Mem: 18432}); s != 4096.0/18432 {
		t.Fatalf("dominant share %v", s)
	}
}

// checkConservation asserts that no agent is over-committed, that every
// agent's free, offered and allocated resources add up to its total, that
// reservations are within their agents and that frameworks and tenants
// hold exactly what agents have lent and given.
func checkConservation(t *testing.T, a *Allocator) {
	t.Helper()
	var lent Resources
	for id, ag := range a.agents {
		if ag.free().Negative() || ag.offered.Negative() || ag.allocated.Negative() || ag.unreservedFree().Negative() {
			t.Fatalf("agent %s over-committed: total %v offered %v allocated %v unreserved free %v", id, ag.total, ag.offered, ag.allocated, ag.unreservedFree())
		}
		var offered, resvSum, resvOff, resvAlloc Resources
		for _, o := range liveOffers(a) {
			if o.Agent == id {
				if o.ag != ag || a.offers.get(o.ID) != o {
					t.Fatalf("offer %d on agent %s points elsewhere", o.ID, id)
				}
				offered = offered.Add(o.Resources)
			}
		}
		if offered != ag.offered || len(ag.offers) != countOffers(a, id) {
			t.Fatalf("agent %s: offers sum to %v, bookkeeping says %v", id, offered, ag.offered)
		}
		for name, r := range ag.resv {
			if r.free().Negative() || r.offered.Negative() || r.allocated.Negative() {
				t.Fatalf("agent %s: reservation for %s over-committed: %+v", id, name, *r)
			}
			resvSum, resvOff, resvAlloc = resvSum.Add(r.amount), resvOff.Add(r.offered), resvAlloc.Add(r.allocated)
		}
		if resvSum != ag.resvSum || resvOff != ag.resvOff || resvAlloc != ag.resvAlloc || !ag.total.Contains(resvSum) {
			t.Fatalf("agent %s: reservation sums %v %v %v, bookkeeping %v %v %v", id, resvSum, resvOff, resvAlloc, ag.resvSum, ag.resvOff, ag.resvAlloc)
		}
		lent = lent.Add(ag.offered).Add(ag.allocated)
	}
	var held Resources
	for name, tn := range a.tenants {
		var sum Resources
		for _, f := range tn.frameworks {
			sum = sum.Add(f.allocated)
		}
		if sum != tn.allocated {
			t.Fatalf("tenant %s holds %v, its frameworks %v", name, tn.allocated, sum)
		}
		held = held.Add(sum)
	}
	if held != lent {
		t.Fatalf("tenants hold %v, agents lent %v", held, lent)
	}
}

func liveOffers(a *Allocator) []*offerRec {
	var out []*offerRec
	a.offers.each(func(r *offerRec) { out = append(out, r) })
	return out
}

func countOffers(a *Allocator, id AgentID) int {
	n := 0
	for _, o := range liveOffers(a) {
		if o.Agent == id {
			n++
		}
	}
	return n
}

func TestOffersGoToLowestDominantShare(t *testing.T) {
	a := New()
	for _, id := range []AgentID{"a1", "a2", "a3", "a4"} {
		if err := a.AddAgent(id, Resources{CPU: 2000, Mem: 2048}); err != nil {
			t.Fatal(err)
		}
	}
	a.AddFramework("f1", "t")
	a.AddFramework("f2", "t")
	offers := a.Allocate()
	if len(offers) != 4 {
		t.Fatalf("%d offers, want 4", len(offers))
	}
	got := map[FrameworkID]int{}
	for _, o := range offers {
		got[o.Framework]++
	}
	if got["f1"] != 2 || got["f2"] != 2 {
		t.Fatalf("offers per framework %v, want 2 each", got)
	}
	checkConservation(t, a)

	// f1 uses half of one offer and declines the other; f2 declines all.
	used := Resources{CPU: 1000, Mem: 1024}
	for _, o := range offers {
		if o.Framework == "f1" && o.Agent == "a1" {
			if err := a.Accept(o.ID, used); err != nil {
				t.Fatal(err)
			}
		} else {
			a.Decline(o.ID)
		}
	}
	checkConservation(t, a)
	if free, _ := a.Free("a1"); free != (Resources{CPU: 1000, Mem: 1024}) {
		t.Fatalf("a1 free %v", free)
	}
	// f2 now has the lowest share: it gets the first agent, after which the
	// two are level and the tie goes to f1, registered first.
	next := a.Allocate()
	if len(next) != 4 || next[0].Framework != "f2" || next[1].Framework != "f1" {
		t.Fatalf("offers %+v, want a1 to f2 then a2 to f1", next)
	}
	for _, o := range next {
		a.Decline(o.ID)
	}
	a.Recover("a1", "f1", used)
	if s := a.Share("f1"); s != 0 {
		t.Fatalf("f1 share after recover = %v", s)
	}
	checkConservation(t, a)
}

func TestAcceptRejectsOversizedUse(t *testing.T) {
	a := New()
	a.AddAgent("a", Resources{CPU: 1000, Mem: 100})
	a.AddFramework("f", "t")
	o := a.Allocate()[0]
	if err := a.Accept(o.ID, Resources{CPU: 2000}); err == nil {
		t.Fatal("accepted more than the offer")
	}
	if err := a.Accept(o.ID+1, Resources{}); err == nil {
		t.Fatal("accepted an unknown offer")
	}
}

func TestSuppressAndRemove(t *testing.T) {
	a := New()
	a.AddAgent("a", Resources{CPU: 1000, Mem: 100})
	a.AddFramework("f", "t")
	a.Suppress("f")
	if o := a.Allocate(); len(o) != 0 {
		t.Fatalf("suppressed framework got offers %v", o)
	}
	a.Revive("f")
	offers := a.Allocate()
	if len(offers) != 1 {
		t.Fatalf("revived framework got %d offers", len(offers))
	}
	if r := a.RemoveAgent("a"); len(r) != 1 || r[0].ID != offers[0].ID {
		t.Fatalf("rescinded %v", r)
	}
	if a.Total() != (Resources{}) || a.Share("f") != 0 {
		t.Fatalf("after removal total %v share %v", a.Total(), a.Share("f"))
	}
	if len(a.Allocate()) != 0 {
		t.Fatal("offers without agents")
	}
}

func TestNoOfferOfNothing(t *testing.T) {
	a := New()
	a.AddAgent("a", Resources{CPU: 1000, Mem: 100})
	a.AddFramework("f", "t")
	o := a.Allocate()[0]
	a.Accept(o.ID, o.Resources)
	if got := a.Allocate(); len(got) != 0 {
		t.Fatalf("offered a full agent: %v", got)
	}
}
