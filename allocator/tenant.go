package allocator

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Tenant is a share of the cluster: a role in Mesos' terms. Frameworks
// belong to a tenant through their role.
type Tenant struct {
	// Weight scales the tenant's fair share: offers go to the lowest
	// dominant share divided by weight. Zero means 1.
	Weight float64
	// Guarantee is what the tenant gets offered before any tenant's fair
	// share is considered. A zero quantity guarantees none of it.
	Guarantee Resources
	// Limit is what the tenant is never offered beyond. A zero quantity
	// leaves that resource unlimited.
	Limit Resources
}

type tenant struct {
	name string
	Tenant
	allocated  Resources // frameworks' allocations and outstanding offers
	frameworks []*framework
	seq        uint64 // creation order, the tie-break

	// Scratch for Allocate.
	heapIdx [2]int // in the fair and quota heaps, -1 when out
}

func (t Tenant) validate() error {
	switch {
	case t.Weight < 0 || math.IsNaN(t.Weight) || math.IsInf(t.Weight, 0):
		return fmt.Errorf("weight %v is not positive: %w", t.Weight, ErrInvalid)
	case t.Guarantee.Negative() || t.Limit.Negative():
		return fmt.Errorf("negative quota %s / %s: %w", t.Guarantee, t.Limit, ErrInvalid)
	case t.Guarantee.headroomCap(Resources{}, t.Limit) != t.Guarantee:
		return fmt.Errorf("guarantee %s exceeds limit %s: %w", t.Guarantee, t.Limit, ErrInvalid)
	}
	return nil
}

func (t Tenant) withDefaults() Tenant {
	if t.Weight == 0 {
		t.Weight = 1
	}
	return t
}

// AddTenant adds a tenant. A framework whose role names it joins it.
func (a *Allocator) AddTenant(name string, t Tenant) error {
	if _, ok := a.tenants[name]; ok {
		return fmt.Errorf("allocator: tenant %q already added", name)
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("allocator: add tenant %q: %w", name, err)
	}
	a.newTenant(name, t)
	return nil
}

// UpdateTenant changes a tenant's weight and quota. Outstanding offers and
// allocations stay; the new quota applies to the next offers.
func (a *Allocator) UpdateTenant(name string, t Tenant) error {
	x, ok := a.tenants[name]
	if !ok {
		return fmt.Errorf("allocator: update tenant %q: %w", name, ErrUnknownTenant)
	}
	if err := t.validate(); err != nil {
		return fmt.Errorf("allocator: update tenant %q: %w", name, err)
	}
	x.Tenant = t.withDefaults()
	return nil
}

func (a *Allocator) newTenant(name string, t Tenant) *tenant {
	a.nextSeq++
	x := &tenant{name: name, Tenant: t.withDefaults(), seq: a.nextSeq}
	a.tenants[name] = x
	return x
}

func (a *Allocator) tenantOrDefault(name string) *tenant {
	if t, ok := a.tenants[name]; ok {
		return t
	}
	return a.newTenant(name, Tenant{})
}

// TenantAllocation is what a tenant's frameworks hold, outstanding offers
// included.
func (a *Allocator) TenantAllocation(name string) (Resources, bool) {
	t, ok := a.tenants[name]
	if !ok {
		return Resources{}, false
	}
	return t.allocated, true
}

// TenantShare is a tenant's dominant share, offers included, not divided
// by its weight.
func (a *Allocator) TenantShare(name string) float64 {
	t, ok := a.tenants[name]
	if !ok {
		return 0
	}
	return t.allocated.DominantShare(a.total)
}

// TenantState is a tenant's settings and what it holds.
type TenantState struct {
	Tenant
	Allocated Resources // offers outstanding included
}

// UnderLimit reports whether task fits under the tenant's limit on top of
// what it holds.
func (s TenantState) UnderLimit(task Resources) bool {
	return task.headroomCap(s.Allocated, s.Limit) == task
}

// TenantInfo is a tenant's settings and allocation.
func (a *Allocator) TenantInfo(name string) (TenantState, bool) {
	t, ok := a.tenants[name]
	if !ok {
		return TenantState{}, false
	}
	return TenantState{Tenant: t.Tenant, Allocated: t.allocated}, true
}

// TenantNames lists the tenants in the order they were added.
func (a *Allocator) TenantNames() []string {
	ts := make([]*tenant, 0, len(a.tenants))
	for _, t := range a.tenants {
		ts = append(ts, t)
	}
	slices.SortFunc(ts, func(x, y *tenant) int { return cmp.Compare(x.seq, y.seq) })
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.name
	}
	return names
}
