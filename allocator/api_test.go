package allocator

import (
	"errors"
	"testing"
	"time"
)

// fakeClock is an injected clock that moves only when told.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func newTest(t *testing.T, timeout time.Duration) (*Allocator, *fakeClock) {
	t.Helper()
	c := &fakeClock{now: time.Unix(1000, 0)}
	a, err := NewWithConfig(Config{Clock: c.Now, OfferTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return a, c
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func agentsOf(offers []Offer, f FrameworkID) []AgentID {
	var ids []AgentID
	for _, o := range offers {
		if o.Framework == f {
			ids = append(ids, o.Agent)
		}
	}
	return ids
}

func declineAll(a *Allocator, offers []Offer) {
	for _, o := range offers {
		a.Decline(o.ID)
	}
}

func TestDeclineFilterDuration(t *testing.T) {
	a, clock := newTest(t, 0)
	must(t, a.AddAgent("a1", Resources{CPU: 1000, Mem: 1000}))
	must(t, a.AddFramework("f", "t"))
	o := a.Allocate()
	must(t, a.DeclineWithFilter(o[0].ID, Filter{Duration: 5 * time.Second}))
	checkConservation(t, a)
	for _, step := range []struct {
		advance time.Duration
		offers  int
	}{{0, 0}, {4 * time.Second, 0}, {999 * time.Millisecond, 0}, {time.Millisecond, 1}} {
		clock.Advance(step.advance)
		got := a.Allocate()
		if len(got) != step.offers {
			t.Fatalf("at %v: %d offers, want %d", clock.now, len(got), step.offers)
		}
		declineAll(a, got)
	}
}

func TestDeclineFilterGoesToOthers(t *testing.T) {
	a, _ := newTest(t, 0)
	must(t, a.AddAgent("a1", Resources{CPU: 1000, Mem: 1000}))
	must(t, a.AddFramework("f1", "t1"))
	must(t, a.AddFramework("f2", "t2"))
	o := a.Allocate()
	if len(o) != 1 || o[0].Framework != "f1" {
		t.Fatalf("offers %+v", o)
	}
	must(t, a.DeclineWithFilter(o[0].ID, Filter{Duration: time.Minute}))
	if o = a.Allocate(); len(o) != 1 || o[0].Framework != "f2" {
		t.Fatalf("after filter offers %+v, want f2", o)
	}
}

func TestDeclineFilterMinResources(t *testing.T) {
	a, clock := newTest(t, 0)
	must(t, a.AddAgent("a1", Resources{CPU: 4000, Mem: 4000}))
	must(t, a.AddFramework("f", "t"))
	must(t, a.AddFramework("g", "u"))
	a.Suppress("g")
	o := a.Allocate()
	// g takes half the agent, f wants more than the half that is left.
	must(t, a.Accept(o[0].ID, Resources{CPU: 2000, Mem: 2000}))
	a.Revive("g")
	a.Suppress("g")
	o = a.Allocate()
	must(t, a.DeclineWithFilter(o[0].ID, Filter{MinResources: Resources{CPU: 3000}}))
	clock.Advance(time.Hour)
	if o = a.Allocate(); len(o) != 0 {
		t.Fatalf("offered less than MinResources: %+v", o)
	}
	a.Recover("a1", "f", Resources{CPU: 2000, Mem: 2000})
	if o = a.Allocate(); len(o) != 1 || o[0].Resources.CPU != 4000 {
		t.Fatalf("offers %+v, want the whole agent once it is big enough", o)
	}
	checkConservation(t, a)
}

func TestReviveClearsFilters(t *testing.T) {
	a, _ := newTest(t, 0)
	must(t, a.AddAgent("a1", Resources{CPU: 1000, Mem: 1000}))
	must(t, a.AddFramework("f", "t"))
	o := a.Allocate()
	must(t, a.DeclineWithFilter(o[0].ID, Filter{Duration: time.Hour}))
	if len(a.Allocate()) != 0 {
		t.Fatal("filtered agent offered")
	}
	a.Suppress("f")
	a.Revive("f")
	if len(a.Allocate()) != 1 {
		t.Fatal("revive did not clear the filter")
	}
}

func TestOfferTimeout(t *testing.T) {
	a, clock := newTest(t, 10*time.Second)
	must(t, a.AddAgent("a1", Resources{CPU: 1000, Mem: 1000}))
	must(t, a.AddAgent("a2", Resources{CPU: 1000, Mem: 1000}))
	must(t, a.AddFramework("f", "t"))
	first := a.Allocate()
	a.Decline(first[1].ID)
	clock.Advance(6 * time.Second)
	second := a.Allocate() // a2 again
	if len(second) != 1 || second[0].Agent != "a2" {
		t.Fatalf("second %+v", second)
	}
	if got := a.Expire(); len(got) != 0 {
		t.Fatalf("expired early: %+v", got)
	}
	clock.Advance(4 * time.Second)
	if got := a.Expire(); len(got) != 1 || got[0].ID != first[0].ID {
		t.Fatalf("expired %+v, want the first a1 offer", got)
	}
	if err := a.Accept(first[0].ID, Resources{}); err == nil {
		t.Fatal("accepted a rescinded offer")
	}
	clock.Advance(6 * time.Second)
	if got := a.Expire(); len(got) != 1 || got[0].Agent != "a2" {
		t.Fatalf("expired %+v", got)
	}
	checkConservation(t, a)
	if a.Share("f") != 0 {
		t.Fatal("expired offers still count")
	}
	if _, err := NewWithConfig(Config{OfferTimeout: -1}); err == nil {
		t.Fatal("negative timeout accepted")
	}
	if New().Expire() != nil {
		t.Fatal("New expires offers")
	}
}

func TestSuppressRevive(t *testing.T) {
	a, _ := newTest(t, 0)
	must(t, a.AddAgent("a1", Resources{CPU: 1000, Mem: 1000}))
	must(t, a.AddFramework("f1", "t"))
	must(t, a.AddFramework("f2", "u"))
	a.Suppress("f1")
	if o := a.Allocate(); len(o) != 1 || o[0].Framework != "f2" {
		t.Fatalf("offers %+v", o)
	} else {
		a.Decline(o[0].ID)
	}
	a.Suppress("f2")
	if o := a.Allocate(); len(o) != 0 {
		t.Fatalf("offers to suppressed %+v", o)
	}
	a.Revive("f1")
	if o := a.Allocate(); len(o) != 1 || o[0].Framework != "f1" {
		t.Fatalf("offers %+v", o)
	}
}

func TestAllocateLimitAndGuarantee(t *testing.T) {
	a, _ := newTest(t, 0)
	for _, id := range []AgentID{"a1", "a2", "a3", "a4"} {
		must(t, a.AddAgent(id, Resources{CPU: 4000, Mem: 4000}))
	}
	must(t, a.AddTenant("rich", Tenant{Weight: 100}))
	must(t, a.AddTenant("quota", Tenant{Guarantee: Resources{CPU: 8000}, Limit: Resources{CPU: 10000}}))
	must(t, a.AddFramework("r", "rich"))
	must(t, a.AddFramework("q", "quota"))
	o := a.Allocate()
	// The guarantee takes the first two agents despite rich's weight.
	if got := agentsOf(o, "q"); len(got) != 2 || got[0] != "a1" || got[1] != "a2" {
		t.Fatalf("quota tenant got %v", got)
	}
	declineAll(a, o)
	a.Suppress("r")
	o = a.Allocate()
	var sum Resources
	for _, x := range o {
		sum = sum.Add(x.Resources)
	}
	if sum.CPU != 10000 {
		t.Fatalf("quota tenant offered %v, want its 10-cpu limit", sum)
	}
	checkConservation(t, a)
	must(t, a.UpdateTenant("quota", Tenant{Limit: Resources{CPU: 1000}}))
	declineAll(a, o)
	if o = a.Allocate(); len(o) != 1 || o[0].Resources.CPU != 1000 {
		t.Fatalf("after update %+v", o)
	}
	for _, bad := range []Tenant{{Weight: -1}, {Guarantee: Resources{CPU: 2}, Limit: Resources{CPU: 1}}, {Limit: Resources{Mem: -1}}} {
		if err := a.UpdateTenant("quota", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("UpdateTenant(%+v) = %v", bad, err)
		}
	}
	if err := a.UpdateTenant("nobody", Tenant{}); !errors.Is(err, ErrUnknownTenant) {
		t.Errorf("UpdateTenant(nobody) = %v", err)
	}
	if err := a.AddTenant("rich", Tenant{}); err == nil {
		t.Error("added a tenant twice")
	}
}

// TestQuotaHeadroom checks that what guarantees lack is held back from
// other tenants even while the guaranteed tenant runs nothing, as Mesos
// does, so that its first job gets its guarantee at once.
func TestQuotaHeadroom(t *testing.T) {
	a, _ := newTest(t, 0)
	for _, id := range []AgentID{"a1", "a2", "a3", "a4", "a5"} {
		must(t, a.AddAgent(id, Resources{CPU: 2000, Mem: 4096}))
	}
	must(t, a.AddTenant("batch", Tenant{}))
	must(t, a.AddTenant("prod", Tenant{Guarantee: Resources{CPU: 4000}}))
	must(t, a.AddFramework("b", "batch"))
	o := a.Allocate()
	var sum Resources
	for _, x := range o {
		sum = sum.Add(x.Resources)
	}
	if sum.CPU != 6000 || sum.Mem != 3*4096 {
		t.Fatalf("batch offered %v with 4 cpus guaranteed to prod, want 6 cpus (three agents)", sum)
	}
	for _, x := range o {
		must(t, a.Accept(x.ID, x.Resources))
	}
	checkConservation(t, a)
	must(t, a.AddFramework("p", "prod"))
	o = a.Allocate()
	sum = Resources{}
	for _, x := range o {
		if x.Framework != "p" {
			t.Fatalf("offer %+v to batch", x)
		}
		sum = sum.Add(x.Resources)
	}
	if sum.CPU != 4000 {
		t.Fatalf("prod offered %v, want its 4-cpu guarantee", sum)
	}
	checkConservation(t, a)
}

func TestWeightedShares(t *testing.T) {
	a, _ := newTest(t, 0)
	for i := range 40 {
		must(t, a.AddAgent(AgentID(rune('A'+i/26))+AgentID(rune('a'+i%26)), Resources{CPU: 1000, Mem: 1000}))
	}
	must(t, a.AddTenant("three", Tenant{Weight: 3}))
	must(t, a.AddFramework("f3", "three"))
	must(t, a.AddFramework("f1", "one"))
	o := a.Allocate()
	if n3, n1 := len(agentsOf(o, "f3")), len(agentsOf(o, "f1")); n3 != 30 || n1 != 10 {
		t.Fatalf("weight 3 got %d agents, weight 1 got %d", n3, n1)
	}
}

func TestReservations(t *testing.T) {
	a, _ := newTest(t, 0)
	must(t, a.AddAgentWithReservations("a1", Resources{CPU: 4000, Mem: 4000}, map[string]Resources{"r": {CPU: 1000, Mem: 1000}}))
	must(t, a.AddFramework("other", "o"))
	o := a.Allocate()
	if len(o) != 1 || o[0].Resources != (Resources{CPU: 3000, Mem: 3000}) {
		t.Fatalf("other offered %+v, want the unreserved 3000", o)
	}
	must(t, a.AddFramework("fr", "r"))
	o2 := a.Allocate()
	if len(o2) != 1 || o2[0].Framework != "fr" || o2[0].Reserved != (Resources{CPU: 1000, Mem: 1000}) {
		t.Fatalf("reserved offer %+v", o2)
	}
	must(t, a.Accept(o2[0].ID, Resources{CPU: 500, Mem: 500}))
	checkConservation(t, a)
	if got, _ := a.TenantAllocation("r"); got != (Resources{CPU: 500, Mem: 500}) {
		t.Fatalf("r holds %v", got)
	}
	// Cannot reserve what is offered to other.
	err := a.Reserve("a1", "o", Resources{CPU: 1000})
	if !errors.Is(err, ErrInsufficient) {
		t.Fatalf("Reserve over an offer = %v", err)
	}
	must(t, a.Accept(o[0].ID, Resources{CPU: 2000, Mem: 2000}))
	must(t, a.Reserve("a1", "r", Resources{CPU: 1000, Mem: 1000}))
	if err := a.Reserve("a1", "r", Resources{CPU: 1}); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("Reserve of allocated = %v", err)
	}
	for _, c := range []struct {
		agent  AgentID
		tenant string
		r      Resources
		want   error
	}{
		{"nope", "r", Resources{CPU: 1}, ErrUnknownAgent},
		{"a1", "nope", Resources{CPU: 1}, ErrUnknownTenant},
		{"a1", "r", Resources{CPU: -1}, ErrInvalid},
	} {
		if err := a.Reserve(c.agent, c.tenant, c.r); !errors.Is(err, c.want) {
			t.Errorf("Reserve(%s, %s, %v) = %v, want %v", c.agent, c.tenant, c.r, err, c.want)
		}
	}
	checkConservation(t, a)
	o = a.Allocate()
	if len(o) != 1 || o[0].Framework != "fr" || o[0].Resources != (Resources{CPU: 1500, Mem: 1500}) {
		t.Fatalf("offers %+v", o)
	}
	if err := a.Unreserve("a1", "r", Resources{CPU: 2000, Mem: 2000}); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("Unreserve under an offer = %v", err)
	}
	a.Decline(o[0].ID)
	if err := a.Unreserve("a1", "r", Resources{CPU: 3000}); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("Unreserve of more than reserved = %v", err)
	}
	if err := a.Unreserve("a1", "o", Resources{CPU: 1}); !errors.Is(err, ErrInsufficient) {
		t.Fatalf("Unreserve without reservation = %v", err)
	}
	// Unreserving everything moves r's in-use 500 to unreserved use.
	must(t, a.Unreserve("a1", "r", Resources{CPU: 2000, Mem: 2000}))
	checkConservation(t, a)
	if len(a.agents["a1"].resv) != 0 {
		t.Fatal("empty reservation kept")
	}
	a.Recover("a1", "fr", Resources{CPU: 500, Mem: 500})
	a.Recover("a1", "other", Resources{CPU: 2000, Mem: 2000})
	checkConservation(t, a)
	if free, _ := a.Free("a1"); free != (Resources{CPU: 4000, Mem: 4000}) {
		t.Fatalf("free %v", free)
	}
}

func TestRecoverAfterRemoveFramework(t *testing.T) {
	a, _ := newTest(t, 0)
	must(t, a.AddAgentWithReservations("a1", Resources{CPU: 2000, Mem: 2000}, map[string]Resources{"r": {CPU: 1000, Mem: 1000}}))
	must(t, a.AddFramework("fr", "r"))
	// Two cycles: the reserved part, then the unreserved one.
	for range 2 {
		for _, x := range a.Allocate() {
			must(t, a.Accept(x.ID, x.Resources))
		}
	}
	checkConservation(t, a)
	a.RemoveFramework("fr")
	a.Recover("a1", "fr", Resources{CPU: 2000, Mem: 2000})
	ag := a.agents["a1"]
	if ag.allocated != (Resources{}) || ag.resvAlloc != (Resources{}) {
		t.Fatalf("after recover allocated %v reserved-allocated %v", ag.allocated, ag.resvAlloc)
	}
	checkConservation(t, a)
}

func TestRemoveAgentRescinds(t *testing.T) {
	a, _ := newTest(t, 0)
	must(t, a.AddAgentWithReservations("a1", Resources{CPU: 2000, Mem: 2000}, map[string]Resources{"r": {CPU: 1000, Mem: 1000}}))
	must(t, a.AddFramework("fr", "r"))
	must(t, a.AddFramework("fo", "o"))
	o := a.Allocate()
	if len(o) != 2 {
		t.Fatalf("offers %+v", o)
	}
	if got := a.RemoveAgent("a1"); len(got) != 2 || got[0].ID != o[0].ID {
		t.Fatalf("rescinded %+v", got)
	}
	checkConservation(t, a)
	if a.Share("fr") != 0 || a.TenantShare("o") != 0 {
		t.Fatal("rescinded offers still count")
	}
	if err := a.AddAgentWithReservations("a2", Resources{CPU: 1}, map[string]Resources{"r": {CPU: 2}}); err == nil {
		t.Fatal("reservation above total accepted")
	}
}
