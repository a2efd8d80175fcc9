// The word-count guest module written in AssemblyScript: the same split and
// sum as examples/wordcount/wordcount.go, byte for byte. Build it with
//
//   sdk/guest/assemblyscript/build.sh examples/wordcount/guest/assemblyscript examples/wordcount/guest/assemblyscript/guest.wasm

import { Bytes, Emitter, fail, flatMap, reduce, utf8 } from "../../../../sdk/guest/assemblyscript";
export * from "../../../../sdk/guest/assemblyscript/exports";

/** The count every word starts with. */
const ONE = utf8("1");

// Byte classes: 0 separates words, 1 is a lowercase letter or a digit, 2 an
// uppercase letter. A word is a maximal run of ASCII letters and digits.
const CLASS = memory.data(256);
for (let c = 0x30; c <= 0x39; c++) store<u8>(CLASS + c, 1);
for (let c = 0x61; c <= 0x7a; c++) store<u8>(CLASS + c, 1);
for (let c = 0x41; c <= 0x5a; c++) store<u8>(CLASS + c, 2);

// @ts-ignore: decorator
@inline function byteClass(p: usize): u32 {
  return load<u8>(CLASS + <usize>load<u8>(p));
}

/** The lowercased copy of a word that has uppercase letters, reused. */
const lower = new Bytes(64);

/** Emits (word, "1") for every word of line, lowercased. */
function split(line: Uint8Array, emit: Emitter): void {
  const base = line.dataStart;
  const end = base + <usize>line.length;
  let p = base;
  while (p < end) {
    while (p < end && byteClass(p) == 0) p++;
    const start = p;
    let classes: u32 = 0;
    while (p < end) {
      const c = byteClass(p);
      if (c == 0) break;
      classes |= c;
      p++;
    }
    if (start == p) break;
    if (classes & 2) {
      const n = <i32>(p - start);
      const q = lower.clear().reserve(n);
      for (let i = 0; i < n; i++) {
        const c = load<u8>(start + <usize>i);
        store<u8>(q + <usize>i, c | (<u8>(byteClass(start + <usize>i) == 2) << 5));
      }
      emit.emit(lower.view(), ONE);
    } else {
      emit.emitRange(line, <i32>(start - base), <i32>(p - base), ONE);
    }
  }
}

/** Adds two decimal counts, reusing the accumulator's storage. */
function sum(acc: Bytes, value: Uint8Array): void {
  const x = parseCount(acc.view());
  if (bad) return;
  const y = parseCount(value);
  if (bad) return;
  acc.clear().appendU64(x + y);
}

// Set by parseCount when its argument is not a decimal count.
let bad = false;

/** The value of a decimal count, as Go's strconv.ParseUint(b, 10, 64); fails the call if b is not one. */
function parseCount(b: Uint8Array): u64 {
  bad = true;
  const n = b.length;
  let x: u64 = 0;
  let ok = n > 0;
  for (let i = 0; i < n && ok; i++) {
    const d = <u32>unchecked(b[i]) - 0x30;
    if (d > 9 || x >= 1844674407370955162) ok = false;
    else {
      const y = x * 10 + d;
      if (y < x * 10) ok = false;
      x = y;
    }
  }
  if (!ok) {
    fail("sum: value is not a decimal count: " + quote(b));
    return 0;
  }
  bad = false;
  return x;
}

// quote renders b as Go's strconv.Quote does, for the error message. It
// follows Go for ASCII and for invalid UTF-8; of the non-ASCII characters it
// escapes only C1 controls, U+00AD, U+2028/9, U+FEFF and noncharacters
// U+FFFE/F, where Go consults the full Unicode tables.
function quote(b: Uint8Array): string {
  const out = new Bytes(b.length + 2).push(0x22);
  const n = b.length;
  let i = 0;
  while (i < n) {
    const c = <u32>b[i];
    if (c < 0x80) {
      if (c == 0x22 || c == 0x5c) out.push(0x5c).push(<u8>c);
      else if (c >= 0x20 && c < 0x7f) out.push(<u8>c);
      else if (c == 0x07) out.appendString("\\a");
      else if (c == 0x08) out.appendString("\\b");
      else if (c == 0x0c) out.appendString("\\f");
      else if (c == 0x0a) out.appendString("\\n");
      else if (c == 0x0d) out.appendString("\\r");
      else if (c == 0x09) out.appendString("\\t");
      else if (c == 0x0b) out.appendString("\\v");
      else hex(out, "\\x", c, 2);
      i++;
      continue;
    }
    const w = runeLen(b, i);
    if (w == 0) {
      hex(out, "\\x", c, 2);
      i++;
      continue;
    }
    const r = rune(b, i, w);
    if ((r >= 0x80 && r < 0xa0) || r == 0xad || r == 0x2028 || r == 0x2029 || r == 0xfeff || r == 0xfffe || r == 0xffff) {
      if (r < 0x10000) hex(out, "\\u", r, 4);
      else hex(out, "\\U", r, 8);
    } else {
      out.appendRange(b, i, i + w);
    }
    i += w;
  }
  return out.push(0x22).toString();
}

function hex(out: Bytes, prefix: string, v: u32, digits: i32): void {
  out.appendString(prefix);
  for (let s = (digits - 1) * 4; s >= 0; s -= 4) out.push(<u8>"0123456789abcdef".charCodeAt((v >> s) & 15));
}

/** The length of the valid UTF-8 sequence at b[i], or 0 if there is none. */
function runeLen(b: Uint8Array, i: i32): i32 {
  const n = b.length - i;
  const c = <u32>b[i];
  let w = 0;
  let lo: u32 = 0x80, hi: u32 = 0xbf;
  if (c >= 0xc2 && c <= 0xdf) w = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    w = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    w = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else return 0;
  if (n < w) return 0;
  const c1 = <u32>b[i + 1];
  if (c1 < lo || c1 > hi) return 0;
  for (let j = 2; j < w; j++) {
    const cj = <u32>b[i + j];
    if (cj < 0x80 || cj > 0xbf) return 0;
  }
  return w;
}

function rune(b: Uint8Array, i: i32, w: i32): u32 {
  let r = <u32>b[i] & (0xff >> (w + 1));
  for (let j = 1; j < w; j++) r = (r << 6) | (<u32>b[i + j] & 0x3f);
  return r;
}

flatMap("split", split);
reduce("sum", sum);
