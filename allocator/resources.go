package allocator

import "fmt"

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
	for _, p := range [][2]int64{{r.CPU, total.CPU}, {r.Mem, total.Mem}, {r.Disk, total.Disk}} {
		if p[1] > 0 {
			share = max(share, float64(p[0])/float64(p[1]))
		}
	}
	return share
}
