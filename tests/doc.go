// Package tests holds wasmgrid's end-to-end tests: whole jobs run the way a
// user runs them, on generated data, with their output checked against a
// reference computed in plain Go.
package tests
