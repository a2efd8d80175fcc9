// Package wasmexec runs the guest functions of a task in a wazero sandbox.
//
// A Runtime compiles each module once per process (keyed by its sha256, with
// an optional on-disk cache of compiled code) and reads its manifest; every
// task gets fresh Instances with a memory cap, and a Pipeline pushes batches
// of records through a chain of guest functions as the guest ABI
// (docs/abi.md) describes. Traps, guest panics, exits and exceeded limits
// come back as *Error values that name the module, the function and the
// cause. This is the only package that imports wazero.
package wasmexec
