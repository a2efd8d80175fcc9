// Package core is the coordinator's state machine: job runs, their stages
// and attempts, the agent registry and the tenants' books, with the offer
// policy that places tasks on agents. Commands go in (a submission, an
// agent's registration or loss, an attempt's status, a cancel, a tick of
// the clock) and decisions come out (launch, kill, commit, job ended);
// Apply is deterministic, with the time taken from the commands, so that
// every coordinator server that applies the same replicated log holds the
// same state and a snapshot restores it exactly.
//
// It owns no goroutine, socket, file or clock: the coordinator's shells
// (the control plane, the HTTP API, the task runner, the replicated log)
// feed it and carry out what it decides. docs/core.md describes the
// commands, the decisions and the invariants its simulation checks.
package core
