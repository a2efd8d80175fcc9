// Package sdk is the Go client of wasmgrid. It loads job specs and builds
// their guest modules (LoadJob), and runs jobs on a grid: today an embedded
// grid in the caller's process (StartLocal), later a remote one through the
// same calls.
//
// Guest SDKs, the libraries that user functions are written with, live
// under sdk/guest, one per language.
package sdk
