// The word-count guest module written in AssemblyScript: the same split and
// sum as examples/wordcount/wordcount.go, byte for byte. Build it with
//
//   sdk/guest/assemblyscript/build.sh examples/wordcount/guest/assemblyscript examples/wordcount/guest/assemblyscript/guest.wasm

import { Bytes, Emitter, fail, flatMap, reduce, utf8 } from "../../../../sdk/guest/assemblyscript";
export * from "../../../../sdk/guest/assemblyscript/exports";

/** The count every word starts with. */
const ONE = utf8("1");

// The scanner looks at eight bytes at a time (SWAR: SIMD within a
// register), so that it goes round its loop about once per word rather than
// once per byte. Each mask below has the high bit of a byte set when that
// byte is in the class.

// @ts-ignore: decorator
@inline const ONES: u64 = 0x0101010101010101;
// @ts-ignore: decorator
@inline const HIGH: u64 = 0x8080808080808080;

/** The bytes of x7 (all < 0x80) that are in lo..hi. */
// @ts-ignore: decorator
@inline function inRange(x7: u64, lo: u64, hi: u64): u64 {
  return (x7 + (0x80 - lo) * ONES) & ~(x7 + (0x7f - hi) * ONES) & HIGH;
}

/** The bytes of x that are ASCII letters or digits: word bytes. */
// @ts-ignore: decorator
@inline function wordBytes(x: u64): u64 {
  const x7 = x & ~HIGH;
  // c | 0x20 is in a..z exactly when c is a letter of either case.
  return (inRange(x7 | (0x20 * ONES), 0x61, 0x7a) | inRange(x7, 0x30, 0x39)) & ~x;
}

/** The bytes of x that are uppercase ASCII letters. */
// @ts-ignore: decorator
@inline function upperBytes(x: u64): u64 {
  return inRange(x & ~HIGH, 0x41, 0x5a) & ~x;
}

/**
 * The eight bytes at p, little-endian; where fewer than eight remain before
 * end, the remaining ones followed by zero bytes, which separate words. The
 * short case reads the eight bytes before end instead, so it never reads
 * past end (it may read before the line, and shifts those bytes out).
 */
// @ts-ignore: decorator
@inline function load8(p: usize, end: usize): u64 {
  const left = end - p;
  if (left >= 8) return load<u64>(p);
  if (left == 0 || end < 8) return slowLoad8(p, end);
  return load<u64>(end - 8) >> (<u64>(8 - left) << 3);
}

function slowLoad8(p: usize, end: usize): u64 {
  let x: u64 = 0;
  for (let i: usize = 0; p + i < end; i++) x |= <u64>load<u8>(p + i) << (<u64>i << 3);
  return x;
}

/** The lowercased copy of a word that has uppercase letters, reused. */
const lower = new Bytes(64);

/** Emits (word, "1") for every word of line, lowercased. */
function split(line: Uint8Array, emit: Emitter): void {
  const base = line.dataStart;
  const end = base + <usize>line.length;
  let p = base;
  while (p < end) {
    const m = wordBytes(load8(p, end));
    if (m == 0) {
      p += 8;
      continue;
    }
    const start = p + <usize>(ctz(m) >> 3);
    const x = load8(start, end);
    const stop = ~wordBytes(x) & HIGH;
    if (stop == 0) {
      p = longWord(line, start, end, emit);
      continue;
    }
    // A word of one to seven bytes, all in x.
    const n = ctz(stop) >> 3;
    const upper = upperBytes(x) & ((<u64>1 << (n << 3)) - 1);
    p = start + <usize>n;
    if (upper == 0) {
      emit.emitRange(line, <i32>(start - base), <i32>(p - base), ONE);
    } else {
      store<u64>(lower.clear().reserve(8), x | (upper >> 2)); // 0x80 >> 2 = 'a' - 'A'
      emit.emit(lower.truncate(<i32>n).view(), ONE);
    }
  }
}

/** Emits the word of eight bytes or more at start, and returns its end. */
function longWord(line: Uint8Array, start: usize, end: usize, emit: Emitter): usize {
  let p = start;
  let upper: u64 = 0;
  let x = load8(p, end);
  let stop = ~wordBytes(x) & HIGH;
  while (stop == 0) {
    upper |= upperBytes(x);
    p += 8;
    x = load8(p, end);
    stop = ~wordBytes(x) & HIGH;
  }
  const n = ctz(stop) >> 3;
  upper |= upperBytes(x) & ((<u64>1 << (n << 3)) - 1);
  p += <usize>n;
  const base = line.dataStart;
  if (upper == 0) {
    emit.emitRange(line, <i32>(start - base), <i32>(p - base), ONE);
    return p;
  }
  // Lowercase eight bytes at a time; the bytes past the word are cut off.
  const len = <i32>(p - start);
  const q = lower.clear().reserve(len + 8);
  for (let i = 0; i < len; i += 8) {
    const y = load8(start + <usize>i, end);
    store<u64>(q + <usize>i, y | (upperBytes(y) >> 2));
  }
  emit.emit(lower.truncate(len).view(), ONE);
  return p;
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
