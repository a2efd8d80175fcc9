// Package grid is the processes of wasmgrid: the coordinator, which accepts
// jobs, plans them and places their tasks through the allocator's offers,
// and the agents, which run tasks and keep their shuffle output. It wires
// the pure allocator and planner to goroutines, files and (later) the
// network; the policy lives in those packages, not here.
//
// The embedded grid (New, Run) puts a coordinator and its agents in one
// process: what `grid run` starts and what the SDK's local mode uses.
package grid
