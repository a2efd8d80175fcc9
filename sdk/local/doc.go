// Package local runs jobs of the Go SDK on an embedded grid: a
// coordinator and its agents in the caller's process, whose tasks run in
// executor processes started from the caller's own program. It is the
// SDK's local mode, kept apart from package sdk so that a client of a
// remote grid never links the grid's server.
//
// A program that starts an embedded grid calls MainIfExecutor first thing
// in main (a test binary, in TestMain).
package local
