// Package raftlog is a replicated, durable command log for the
// coordinator: 1, 3 or 5 servers agree on one sequence of opaque commands
// through etcd's raft library, keep it in a bbolt file, and apply it in
// order, once per server, to a deterministic state machine (FSM).
// Messages travel over a Transport, QUIC with mutual TLS between servers or
// an in-memory network in tests. docs/raftlog.md describes the storage
// layout, the framing, the timings and what an operator does when
// something breaks.
package raftlog
