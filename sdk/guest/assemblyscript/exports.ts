// The exports of guest ABI v1 (docs/abi.md). A guest's entry file re-exports
// them, next to its registrations:
//
//   export * from "<path to sdk/guest/assemblyscript>/exports";
//
// AssemblyScript exports the module's linear memory as "memory" by itself.

import { Runtime } from "~lib/shared/runtime";
import { ABI_VERSION, alloc, describe, outputLen, outputPtr, run } from "./core";

// @ts-ignore: decorator
@inline function pack(ptr: usize, len: usize): i64 {
  return len == 0 ? 0 : <i64>((<u64>ptr << 32) | <u64>len);
}

/** The guest ABI version: 1. */
export function wasmgrid_abi_version(): i32 {
  return ABI_VERSION;
}

/** ptr << 32 | len of the manifest. */
export function wasmgrid_describe(): i64 {
  const m = describe();
  return pack(m.dataStart, <usize>m.length);
}

/** A buffer of at least len bytes for the next call, or 0. */
export function wasmgrid_alloc(len: i32): i32 {
  return <i32>alloc(len);
}

/** Runs the call at ptr..ptr+len; returns the status. */
export function wasmgrid_run(ptr: i32, len: i32): i32 {
  const status = run(<usize><u32>ptr, <usize><u32>len);
  // The minimal runtime collects only when told to, and only safely when no
  // managed reference lives on the wasm stack alone: here, between calls.
  if (ASC_RUNTIME == Runtime.Minimal) __collect();
  return status;
}

/** ptr << 32 | len of the last call's output batch or error message. */
export function wasmgrid_output(): i64 {
  return pack(outputPtr(), outputLen());
}
