package allocator

import (
	"fmt"
	"math"
)

// Resources is an amount of each resource kind. Quantities are integers
// (millicores, MiB) so that free plus used always equals total exactly.
type Resources struct {
	CPU  int64 // millicores
	Mem  int64 // MiB
	Disk int64 // MiB
}

// Add returns r + o.
func (r Resources) Add(o Resources) Resources {
	return Resources{CPU: r.CPU + o.CPU, Mem: r.Mem + o.Mem, Disk: r.Disk + o.Disk}
}

// Sub returns r - o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{CPU: r.CPU - o.CPU, Mem: r.Mem - o.Mem, Disk: r.Disk - o.Disk}
}

// Contains reports whether o fits in r, resource by resource.
func (r Resources) Contains(o Resources) bool {
	return o.CPU <= r.CPU && o.Mem <= r.Mem && o.Disk <= r.Disk
}

// IsZero reports whether r has none of anything.
func (r Resources) IsZero() bool { return r == Resources{} }

// Negative reports whether any quantity of r is below zero.
func (r Resources) Negative() bool { return r.CPU < 0 || r.Mem < 0 || r.Disk < 0 }

func (r Resources) String() string {
	return fmt.Sprintf("cpu:%dm mem:%dMiB disk:%dMiB", r.CPU, r.Mem, r.Disk)
}

// DominantShare is the largest share of total that r takes of any resource,
// as a fraction in [0, 1] (more if r exceeds total). Resources the cluster
// has none of do not count.
func (r Resources) DominantShare(total Resources) float64 {
	share := 0.0
	if total.CPU > 0 {
		share = float64(r.CPU) / float64(total.CPU)
	}
	if total.Mem > 0 {
		share = max(share, float64(r.Mem)/float64(total.Mem))
	}
	if total.Disk > 0 {
		share = max(share, float64(r.Disk)/float64(total.Disk))
	}
	return share
}

// Min returns the smaller quantity of r and o, resource by resource.
func (r Resources) Min(o Resources) Resources {
	return Resources{CPU: min(r.CPU, o.CPU), Mem: min(r.Mem, o.Mem), Disk: min(r.Disk, o.Disk)}
}

// Max returns the larger quantity of r and o, resource by resource.
func (r Resources) Max(o Resources) Resources {
	return Resources{CPU: max(r.CPU, o.CPU), Mem: max(r.Mem, o.Mem), Disk: max(r.Disk, o.Disk)}
}

// offerable reports whether r is worth offering: some CPU and some memory.
func (r Resources) offerable() bool { return r.CPU > 0 && r.Mem > 0 }

// headroomCap caps r so that alloc + r stays within limit, resource by
// resource; a zero quantity of limit means no limit on that resource.
func (r Resources) headroomCap(alloc, limit Resources) Resources {
	if limit.CPU > 0 {
		r.CPU = min(r.CPU, max(0, limit.CPU-alloc.CPU))
	}
	if limit.Mem > 0 {
		r.Mem = min(r.Mem, max(0, limit.Mem-alloc.Mem))
	}
	if limit.Disk > 0 {
		r.Disk = min(r.Disk, max(0, limit.Disk-alloc.Disk))
	}
	return r
}

// satisfaction is how far alloc goes towards guarantee: the smallest
// fraction over the resources guarantee names, or +Inf if it names none.
func (r Resources) satisfaction(guarantee Resources) float64 {
	s := math.Inf(1)
	for _, p := range [][2]int64{{r.CPU, guarantee.CPU}, {r.Mem, guarantee.Mem}, {r.Disk, guarantee.Disk}} {
		if p[1] > 0 {
			s = min(s, float64(p[0])/float64(p[1]))
		}
	}
	return s
}
