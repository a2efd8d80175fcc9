// Package wasmexec runs the guest functions of a task in a wazero sandbox.
//
// A Runtime compiles each module once per process (keyed by its sha256, with
// an optional on-disk cache of compiled code) and reads its manifest; every
// task gets fresh Instances with a memory cap, and a Pipeline pushes batches
// of records through a chain of guest functions as the guest ABI
// (docs/abi.md) describes. Traps, guest panics, exits and exceeded limits
// come back as *Error values that name the module, the function and the
// cause. This is the only package that imports wazero.
//
// On Linux an instance's linear memory is one anonymous mapping of the most
// it may grow to (the module's maximum, within the memory cap), reserved
// with MAP_NORESERVE: growing it copies nothing, only the pages the guest
// touches are resident, and closing the instance unmaps it.
package wasmexec
