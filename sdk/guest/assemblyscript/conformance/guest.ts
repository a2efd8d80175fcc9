// The AssemblyScript guest SDK's conformance module: the functions of
// docs/conformance.md, in its order, which every guest SDK implements alike.
//
//   sdk/guest/assemblyscript/build.sh sdk/guest/assemblyscript/conformance conformance.wasm

import { Bytes, Emitter, Record, equal, fail, failing, filter, flatMapPairs, map, reduce, utf8 } from "..";
export * from "../exports";

const BOOM = utf8("boom");

/** b with a-z uppercased: b itself if it has no lowercase letter, else a copy. */
function upper(b: Uint8Array): Uint8Array {
  const n = b.length;
  let i = 0;
  while (i < n && !isLower(unchecked(b[i]))) i++;
  if (i == n) return b;
  const out = b.slice();
  for (; i < n; i++) {
    const c = unchecked(out[i]);
    if (isLower(c)) unchecked((out[i] = c - 0x20));
  }
  return out;
}

// @ts-ignore: decorator
@inline function isLower(c: u8): bool {
  return c >= 0x61 && c <= 0x7a;
}

// parseUint is Go's strconv.ParseUint(s, 10, 64): a value, and whether s
// was a valid decimal number. Like Go it gives 0 for a syntax error and the
// largest uint64 for a number out of range.
let parsedOK = false;

function parseUint(b: Uint8Array): u64 {
  parsedOK = false;
  const n = b.length;
  if (n == 0) return 0;
  let x: u64 = 0;
  for (let i = 0; i < n; i++) {
    const d = <u32>unchecked(b[i]) - 0x30;
    if (d > 9) return 0;
    if (x >= 1844674407370955162) return u64.MAX_VALUE; // x*10 overflows
    const y = x * 10 + d;
    if (y < x * 10) return u64.MAX_VALUE;
    x = y;
  }
  parsedOK = true;
  return x;
}

// Scratch buffers for explode's counters, one per nesting level: a chain
// such as explode|swap|explode re-enters explode while the outer call's
// counter is still in use as a key.
const counters = new Array<Bytes>();
let depth = 0;

map("identity", (r: Record): void => {});

map("swap", (r: Record): void => {
  const k = r.key;
  r.key = r.value;
  r.value = k;
});

map("upper", (r: Record): void => {
  r.key = upper(r.key);
  r.value = upper(r.value);
});

flatMapPairs("explode", (key: Uint8Array, value: Uint8Array, emit: Emitter): void => {
  const n = parseUint(value);
  if (!parsedOK) return;
  if (depth == counters.length) counters.push(new Bytes(24));
  const buf = counters[depth++];
  for (let i: u64 = 0; i < n && !failing(); i++) {
    emit.emit(key, buf.clear().appendU64(i).view());
  }
  depth--;
});

filter("nonempty", (key: Uint8Array, value: Uint8Array): bool => value.length > 0);

reduce("concat", (acc: Bytes, value: Uint8Array): void => {
  acc.push(0x2b).append(value);
});

reduce("sum", (acc: Bytes, value: Uint8Array): void => {
  const x = parseUint(acc.view());
  const y = parseUint(value);
  acc.clear().appendU64(x + y);
});

map("fail", (r: Record): void => {
  fail("fail: refusing record ", r.key);
});

map("trap", (r: Record): void => {
  unreachable();
});

flatMapPairs("fail_after", (key: Uint8Array, value: Uint8Array, emit: Emitter): void => {
  if (equal(key, BOOM)) {
    fail("fail_after: boom");
    return;
  }
  emit.emit(key, value);
});
