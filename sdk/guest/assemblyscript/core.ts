// The registry and the run loop of the wasmgrid AssemblyScript guest SDK:
// guest ABI v1 (docs/abi.md). Users import from index.ts; the wasm exports
// that the host calls are in exports.ts.

import { Bytes, MAX_BUFFER, bytesEqual, rebindView, repointView } from "./bytes";

/** The guest ABI version this SDK implements. */
export const ABI_VERSION: i32 = 1;

/** Status codes of wasmgrid_run. */
export const STATUS_OK: i32 = 0;
export const STATUS_USER_ERROR: i32 = 1;
export const STATUS_BAD_CALL: i32 = 2;

// Internal kinds. FLAT_MAP and FLAT_MAP_PAIRS are both "flat_map" in the
// manifest; they differ in what the user function is given.
// @ts-ignore: decorator
@inline const MAP: u8 = 0;
// @ts-ignore: decorator
@inline const FLAT_MAP: u8 = 1;
// @ts-ignore: decorator
@inline const FLAT_MAP_PAIRS: u8 = 2;
// @ts-ignore: decorator
@inline const FILTER: u8 = 3;
// @ts-ignore: decorator
@inline const REDUCE: u8 = 4;

/**
 * A record as a map function sees it. The function rewrites it in place:
 * it may assign new arrays (or views) to key and value, or leave them.
 */
export class Record {
  constructor(public key: Uint8Array, public value: Uint8Array) {}
}

/** A map function: turns the record into exactly one record, by rewriting it. */
export type MapFn = (record: Record) => void;
/** A flat_map function of a record's value: emits zero or more records. */
export type FlatMapFn = (value: Uint8Array, emit: Emitter) => void;
/** A flat_map function of a record's key and value: emits zero or more records. */
export type FlatMapPairsFn = (key: Uint8Array, value: Uint8Array, emit: Emitter) => void;
/** A filter function: keeps the record iff it returns true. */
export type FilterFn = (key: Uint8Array, value: Uint8Array) => bool;
/**
 * A reduce function: acc holds the values of the run folded so far (a);
 * the function turns it into a ⊕ value. It must be associative and
 * commutative.
 */
export type ReduceFn = (acc: Bytes, value: Uint8Array) => void;

/**
 * What a flat_map function emits records through. emit copies nothing
 * until the record reaches the end of the chain, where it is copied into
 * the output: key and value may be views, scratch buffers reused for the
 * next record, or constants.
 */
export class Emitter {
  constructor(private next: i32) {}

  /** Emits one record (key, value) to the rest of the chain. */
  emit(key: Uint8Array, value: Uint8Array): void {
    if (failed) return;
    if (this.next == chainLen) {
      emitRaw(key.dataStart, <usize>key.byteLength, value.dataStart, <usize>value.byteLength);
      return;
    }
    push(this.next, key, value);
  }

  /** Emits (key[start:end], value) without making a view of the key. */
  emitRange(key: Uint8Array, start: i32, end: i32, value: Uint8Array): void {
    if (start < 0 || end > key.byteLength || start > end) unreachable();
    if (failed) return;
    if (this.next == chainLen) {
      emitRaw(key.dataStart + <usize>start, <usize>(end - start), value.dataStart, <usize>value.byteLength);
      return;
    }
    const v = rangeViews[this.next];
    rebindView(v, key.buffer);
    repointView(v, key.dataStart + <usize>start, <usize>(end - start));
    push(this.next, v, value);
  }
}

// ---- registry ----

const kinds = new Array<u8>();
const slots = new Array<i32>();
const names = new Array<string>();
const mapFns = new Array<MapFn>();
const flatFns = new Array<FlatMapFn>();
const flatPairFns = new Array<FlatMapPairsFn>();
const filterFns = new Array<FilterFn>();
const reduceFns = new Array<ReduceFn>();
let registrationError: string | null = null;

function validName(name: string): bool {
  const n = name.length;
  if (n == 0 || n > 128) return false;
  for (let i = 0; i < n; i++) {
    const c = name.charCodeAt(i);
    const letter = (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c == 0x5f;
    const other = (c >= 0x30 && c <= 0x39) || c == 0x2e || c == 0x2d;
    if (!(letter || (i > 0 && other))) return false;
  }
  return true;
}

/** Adds a function; false if it cannot be registered (the module then describes the error). */
function register(name: string, kind: u8, slot: i32): bool {
  if (registrationError !== null) return false;
  if (!validName(name)) {
    registrationError = "wasmgrid guest: invalid function name " + quote(name) + ": names match ^[A-Za-z_][A-Za-z0-9_.-]{0,127}$";
    return false;
  }
  if (names.includes(name)) {
    registrationError = "wasmgrid guest: function " + quote(name) + " registered twice";
    return false;
  }
  names.push(name);
  kinds.push(kind);
  slots.push(slot);
  return true;
}

function quote(s: string): string {
  return '"' + s.replaceAll("\\", "\\\\").replaceAll('"', '\\"') + '"';
}

/** Registers a map function: it rewrites each record into exactly one record. */
export function map(name: string, fn: MapFn): void {
  if (register(name, MAP, mapFns.length)) mapFns.push(fn);
}

/** Registers a flat_map function of each record's value; it emits zero or more records. */
export function flatMap(name: string, fn: FlatMapFn): void {
  if (register(name, FLAT_MAP, flatFns.length)) flatFns.push(fn);
}

/** Registers a flat_map function of each record's key and value; it emits zero or more records. */
export function flatMapPairs(name: string, fn: FlatMapPairsFn): void {
  if (register(name, FLAT_MAP_PAIRS, flatPairFns.length)) flatPairFns.push(fn);
}

/** Registers a filter: records for which fn returns false are dropped. */
export function filter(name: string, fn: FilterFn): void {
  if (register(name, FILTER, filterFns.length)) filterFns.push(fn);
}

/**
 * Registers a reduce function. For each run of records with equal keys the
 * SDK copies the first value into an accumulator and calls fn(acc, value)
 * for each further value; fn updates acc in place (clear() and append, or
 * append). A run of one record is emitted unchanged, without calling fn.
 */
export function reduce(name: string, fn: ReduceFn): void {
  if (register(name, REDUCE, reduceFns.length)) reduceFns.push(fn);
}

/**
 * Fails the current call with a guest error (status 1): the message, then
 * the raw bytes of data if given (a key, say, as it is). A function that
 * calls fail should return right away; whatever it emits afterwards is
 * dropped, and no further record is processed. AssemblyScript cannot catch
 * exceptions: `throw`, `abort` and failed assertions trap, which ends the
 * instance.
 */
export function fail(message: string, data: Uint8Array | null = null): void {
  if (failed) return;
  failed = true;
  failMessage.clear().appendString(message);
  if (data !== null) failMessage.append(data);
}

/** Whether fail was called during the current call. */
export function failing(): bool {
  return failed;
}

const KIND_NAMES: StaticArray<string> = ["map", "flat_map", "flat_map", "filter", "reduce"];

const manifest = new Bytes(256);

/** The manifest, as "KIND NAME\n" lines; a registration error in its place. */
export function describe(): Bytes {
  manifest.clear();
  const err = registrationError;
  if (err !== null) {
    manifest.appendString(err).push(0x0a);
    return manifest;
  }
  for (let i = 0; i < names.length; i++) {
    manifest.appendString(KIND_NAMES[kinds[i]]).push(0x20).appendString(names[i]).push(0x0a);
  }
  return manifest;
}

// ---- the input buffer ----

let input = new ArrayBuffer(64);
const inKey = Uint8Array.wrap(input, 0, 0);
const inValue = Uint8Array.wrap(input, 0, 0);

/** wasmgrid_alloc: a buffer of at least n bytes for the next call, or 0. */
export function alloc(n: i32): usize {
  if (n < 0 || <usize>n > MAX_BUFFER) return 0;
  const cap = input.byteLength;
  if (n > cap) {
    // Grow by half again at least, so that calls of slowly rising sizes
    // do not reallocate every time.
    let size = max(<u64>n, <u64>cap + (<u64>cap >> 1));
    if (size > <u64>MAX_BUFFER) size = <u64>n;
    input = new ArrayBuffer(<i32>size);
    rebindView(inKey, input);
    rebindView(inValue, input);
  }
  return changetype<usize>(input);
}

// ---- the output buffer (raw memory, reused across calls) ----

let outPtr: usize = 0;
let outCap: usize = 0;
let outLen: usize = 0;
let outCount: u32 = 0;

function growOut(need: usize): void {
  const want = <u64>outLen + <u64>need;
  let size = max(want, max(<u64>outCap * 2, 64 << 10));
  if (size > <u64>MAX_BUFFER) size = want;
  if (size > <u64>MAX_BUFFER) unreachable(); // one call's output is limited to 1 GiB
  outPtr = outPtr == 0 ? heap.alloc(<usize>size) : heap.realloc(outPtr, <usize>size);
  outCap = <usize>size;
}

// @ts-ignore: decorator
@inline function emitRaw(kp: usize, kl: usize, vp: usize, vl: usize): void {
  const need: usize = 8 + kl + vl;
  if (outCap - outLen < need) growOut(need);
  const p = outPtr + outLen;
  store<u32>(p, <u32>kl);
  store<u32>(p, <u32>vl, 4);
  copy(p + 8, kp, kl);
  copy(p + 8 + kl, vp, vl);
  outLen += need;
  outCount++;
}

// memory.copy has a fixed cost that dominates for the few bytes of a
// typical key: copy those by hand.
// @ts-ignore: decorator
@inline function copy(dst: usize, src: usize, n: usize): void {
  if (n <= 16) {
    if (n >= 8) {
      store<u64>(dst, load<u64>(src));
      store<u64>(dst + n - 8, load<u64>(src + n - 8));
    } else if (n >= 4) {
      store<u32>(dst, load<u32>(src));
      store<u32>(dst + n - 4, load<u32>(src + n - 4));
    } else if (n > 0) {
      store<u8>(dst, load<u8>(src));
      store<u8>(dst + (n >> 1), load<u8>(src + (n >> 1)));
      store<u8>(dst + n - 1, load<u8>(src + n - 1));
    }
  } else {
    memory.copy(dst, src, n);
  }
}

// ---- one call ----

let failed = false;
const failMessage = new Bytes();
let resultPtr: usize = 0;
let resultLen: usize = 0;

// The chain of the current call, and per-stage objects reused across calls.
let chainLen: i32 = 0;
const chainKind = new Array<u8>();
const chainSlot = new Array<i32>();
const records = new Array<Record>();
const emitters = new Array<Emitter>();
const rangeViews = new Array<Uint8Array>();
const acc = new Bytes(256);

/** Pushes one record into the chain at stage, and what comes out of it into the output. */
function push(stage: i32, key: Uint8Array, value: Uint8Array): void {
  for (; stage < chainLen; stage++) {
    const kind = unchecked(chainKind[stage]);
    const slot = unchecked(chainSlot[stage]);
    if (kind == MAP) {
      const rec = unchecked(records[stage]);
      rec.key = key;
      rec.value = value;
      const f = unchecked(mapFns[slot]);
      f(rec);
      if (failed) return;
      key = rec.key;
      value = rec.value;
    } else if (kind == FILTER) {
      const f = unchecked(filterFns[slot]);
      if (!f(key, value)) return;
      if (failed) return;
    } else if (kind == FLAT_MAP) {
      const f = unchecked(flatFns[slot]);
      f(value, unchecked(emitters[stage]));
      return;
    } else {
      const f = unchecked(flatPairFns[slot]);
      f(key, value, unchecked(emitters[stage]));
      return;
    }
  }
  emitRaw(key.dataStart, <usize>key.byteLength, value.dataStart, <usize>value.byteLength);
}

function badCall(msg: string): i32 {
  outLen = 0;
  outCount = 0;
  const n = String.UTF8.byteLength(msg);
  if (outCap < <usize>n) growOut(<usize>n);
  String.UTF8.encodeUnsafe(changetype<usize>(msg), msg.length, outPtr);
  resultPtr = outPtr;
  resultLen = <usize>n;
  return STATUS_BAD_CALL;
}

function userError(): i32 {
  resultPtr = failMessage.dataStart;
  resultLen = <usize>failMessage.length;
  return STATUS_USER_ERROR;
}

/** wasmgrid_output: the last call's output batch or message. */
export function outputPtr(): usize {
  return resultPtr;
}
export function outputLen(): usize {
  return resultLen;
}

/** wasmgrid_run: runs the call at ptr..ptr+len (docs/abi.md, "A call"). */
export function run(ptr: usize, len: usize): i32 {
  failed = false;
  outLen = 4;
  outCount = 0;
  if (outCap < 4) growOut(4);
  resultPtr = 0;
  resultLen = 0;
  const regErr = registrationError;
  if (regErr !== null) return badCall(regErr);
  if (ptr != changetype<usize>(input) || len > <usize>input.byteLength) {
    return badCall("wasmgrid_run: the call is not in the buffer returned by wasmgrid_alloc");
  }
  if (len < 4) return badCall("call shorter than its function count");
  const n = load<u32>(ptr);
  if (n == 0 || <u64>len < 4 + 4 * <u64>n + 4) {
    return badCall("call names " + n.toString() + " functions but has " + len.toString() + " bytes");
  }
  const nfuncs = <u32>kinds.length;
  for (let i: u32 = 0; i < n; i++) {
    const idx = load<u32>(ptr + 4 + 4 * <usize>i);
    if (idx >= nfuncs) {
      return badCall("function index " + idx.toString() + " out of range: the module has " + nfuncs.toString() + " functions");
    }
  }
  const first = load<u32>(ptr + 4);
  const end = ptr + len;
  const batch = ptr + 4 + 4 * <usize>n;
  if (unchecked(kinds[first]) == REDUCE) {
    if (n != 1) return badCall("a reduce function must be called alone");
    const status = runReduce(unchecked(reduceFns[unchecked(slots[first])]), batch, end);
    return finish(status);
  }
  for (let i: u32 = 1; i < n; i++) {
    const idx = load<u32>(ptr + 4 + 4 * <usize>i);
    if (unchecked(kinds[idx]) == REDUCE) {
      return badCall("reduce function " + quote(names[idx]) + " chained after other functions");
    }
  }
  setChain(ptr + 4, <i32>n);
  return finish(runChain(batch, end));
}

function finish(status: i32): i32 {
  if (status != STATUS_OK) return status;
  store<u32>(outPtr, outCount);
  resultPtr = outPtr;
  resultLen = outLen;
  return STATUS_OK;
}

function setChain(idx: usize, n: i32): void {
  chainLen = n;
  chainKind.length = n;
  chainSlot.length = n;
  for (let i = 0; i < n; i++) {
    const f = load<u32>(idx + 4 * <usize>i);
    unchecked(chainKind[i] = kinds[f]);
    unchecked(chainSlot[i] = slots[f]);
  }
  const empty = inKey; // any view: replaced before use
  while (records.length < n) records.push(new Record(empty, empty));
  while (emitters.length < n) emitters.push(new Emitter(emitters.length + 1));
  while (rangeViews.length <= n) rangeViews.push(Uint8Array.wrap(input, 0, 0));
}

function runChain(batch: usize, end: usize): i32 {
  if (end - batch < 4) return badCall("batch shorter than its record count");
  const count = load<u32>(batch);
  let p = batch + 4;
  for (let i: u32 = 0; i < count; i++) {
    if (end - p < 8) return badCall(truncated(i, count));
    const kl = <usize>load<u32>(p);
    const vl = <usize>load<u32>(p, 4);
    if (<u64>(end - p - 8) < <u64>kl + <u64>vl) return badCall(overrun(i, count, kl, vl));
    repointView(inKey, p + 8, kl);
    repointView(inValue, p + 8 + kl, vl);
    push(0, inKey, inValue);
    if (failed) return userError();
    p += 8 + kl + vl;
  }
  if (p != end) return badCall(trailing(end - p, count));
  return STATUS_OK;
}

function runReduce(f: ReduceFn, batch: usize, end: usize): i32 {
  if (end - batch < 4) return badCall("batch shorter than its record count");
  const count = load<u32>(batch);
  let p = batch + 4;
  // The current run: its key and first value in the input, and whether
  // acc holds its folded value (runs of one are emitted as they are).
  let have = false;
  let folding = false;
  let kp: usize = 0, kl: usize = 0, vp: usize = 0, vl: usize = 0;
  for (let i: u32 = 0; i < count; i++) {
    if (end - p < 8) return badCall(truncated(i, count));
    const kl2 = <usize>load<u32>(p);
    const vl2 = <usize>load<u32>(p, 4);
    if (<u64>(end - p - 8) < <u64>kl2 + <u64>vl2) return badCall(overrun(i, count, kl2, vl2));
    const kp2 = p + 8;
    const vp2 = kp2 + kl2;
    p = vp2 + vl2;
    if (have && kl2 == kl && bytesEqual(kp2, kp, kl)) {
      if (!folding) {
        acc.clear().appendRaw(vp, <i32>vl);
        folding = true;
      }
      repointView(inValue, vp2, vl2);
      f(acc, inValue);
      if (failed) return userError();
      continue;
    }
    if (have) {
      if (folding) emitRaw(kp, kl, acc.dataStart, <usize>acc.length);
      else emitRaw(kp, kl, vp, vl);
    }
    have = true;
    folding = false;
    kp = kp2;
    kl = kl2;
    vp = vp2;
    vl = vl2;
  }
  if (p != end) return badCall(trailing(end - p, count));
  if (have) {
    if (folding) emitRaw(kp, kl, acc.dataStart, <usize>acc.length);
    else emitRaw(kp, kl, vp, vl);
  }
  return STATUS_OK;
}

function truncated(i: u32, n: u32): string {
  return "record " + i.toString() + " of " + n.toString() + ": truncated header";
}

function overrun(i: u32, n: u32, kl: usize, vl: usize): string {
  return "record " + i.toString() + " of " + n.toString() + ": lengths " + kl.toString() + "+" + vl.toString() + " pass the end of the batch";
}

function trailing(extra: usize, n: u32): string {
  return extra.toString() + " bytes after the last of " + n.toString() + " records";
}
