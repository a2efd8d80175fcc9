// Package allocator shares the cluster's resources between job schedulers
// with resource offers, as the Mesos master does: it tracks every agent's
// total, offered and allocated resources and lends free resources to the
// framework with the lowest dominant share (Dominant Resource Fairness).
//
// The package is pure: no goroutines, no I/O, no clock of its own. The
// coordinator drives it with events (an agent joined, a task finished) and
// asks it for offers. Tenants (roles) have weights, guarantees and limits;
// agents carry static and dynamic reservations; declines carry filters;
// offers time out on an injected clock. See docs/allocator.md.
package allocator
