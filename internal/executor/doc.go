// Package executor runs task attempts, and the processes that run them.
//
// Run runs one attempt: it reads the task's input (a split of a source, or
// its partition of a parent's shuffle output merged in key order), pushes
// it through the stage's pipeline of guest functions in wasmexec, and
// writes the output (sorted, combined shuffle blocks, or a part file for
// the sink). It turns every failure into a planner Failure that says
// whether a retry, a map rerun or nothing can help. A task is described by
// data alone (Task, and TaskMsg on the wire).
//
// An agent runs attempts in executor processes, child processes of its own
// binary (MainIfExecutor), which it talks to over their standard input and
// output (Process; the protocol is in proto.go and docs/protocol.md). Its
// Pool keeps one executor per tenant: attempts of different tenants never
// share a process, so a guest that spins past its deadline, exhausts its
// memory or crashes its executor costs its own tenant's attempts at most.
// The Pool limits each executor's resident memory to what the allocator
// reserved for its running attempts plus a fixed overhead (an RSS watchdog
// everywhere, cgroup v2 or v1 where the machine allows), gives it an equal
// CPU weight and a quota of its reserved CPU (cgroups), and stops idle
// executors. Executors die with their agent: a parent-death signal, forked
// from a thread that lives as long as the agent's Pool (Spawner), and their
// own watch of their parent and their input. An executor enforces its
// attempts' deadlines itself too, with POSIX timers as the last resort when
// a spinning guest has stalled its goroutines.
package executor
