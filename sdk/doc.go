// Package sdk is the Go client of wasmgrid. It loads job specs and builds
// their guest modules (LoadJob), builds jobs in Go (NewJob), and runs them
// on a remote grid through its HTTP API (Connect, NewRemote), whose JSON
// types are package api's.
//
// The SDK's local mode, an embedded grid in the caller's process, is
// package sdk/local: it links the grid's server, which this package never
// does. Both satisfy Grid, which JobBuilder.Run and the actions Collect
// and Count take.
//
// Guest SDKs, the libraries that user functions are written with, live
// under sdk/guest, one per language.
package sdk
