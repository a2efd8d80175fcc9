// Byte helpers of the wasmgrid AssemblyScript guest SDK: Bytes, a growable
// byte buffer, and the view plumbing the run loop uses to hand records to
// user functions without allocating.

// @ts-ignore: decorator
@inline const DATA_START = offsetof<Uint8Array>("dataStart");
// @ts-ignore: decorator
@inline const BYTE_LENGTH = offsetof<Uint8Array>("byteLength");
// @ts-ignore: decorator
@inline const BUFFER = offsetof<Uint8Array>("buffer");

/** Points an existing view at buf (an ArrayBuffer that holds the bytes). */
// @ts-ignore: decorator
@inline export function rebindView(view: Uint8Array, buf: ArrayBuffer): void {
  store<usize>(changetype<usize>(view), changetype<usize>(buf), BUFFER);
  __link(changetype<usize>(view), changetype<usize>(buf), false);
}

/** Points an existing view at ptr..ptr+len, inside the ArrayBuffer it is bound to. */
// @ts-ignore: decorator
@inline export function repointView(view: Uint8Array, ptr: usize, len: usize): void {
  store<usize>(changetype<usize>(view), ptr, DATA_START);
  store<i32>(changetype<usize>(view), <i32>len, BYTE_LENGTH);
}

/** Writes the decimal digits of n at p (which must have room for 20 bytes) and returns their count. */
export function writeU64(p: usize, n: u64): i32 {
  if (n <= <u64>u32.MAX_VALUE) return writeU32(p, <u32>n);
  let digits = 10;
  for (let m = n / 10000000000; m != 0; m /= 10) digits++;
  let q = p + <usize>digits;
  do {
    q--;
    store<u8>(q, <u8>(0x30 + <u32>(n % 10)));
    n /= 10;
  } while (n != 0);
  return digits;
}

function writeU32(p: usize, n: u32): i32 {
  const digits = n < 100000 ? (n < 100 ? (n < 10 ? 1 : 2) : n < 1000 ? 3 : n < 10000 ? 4 : 5)
    : n < 10000000 ? (n < 1000000 ? 6 : 7) : n < 100000000 ? 8 : n < 1000000000 ? 9 : 10;
  let q = p + <usize>digits;
  do {
    q--;
    store<u8>(q, <u8>(0x30 + n % 10));
    n /= 10;
  } while (n != 0);
  return digits;
}

/**
 * A growable byte buffer: the AssemblyScript counterpart of appending to a
 * Go slice. Its storage is reused when it is cleared, so a Bytes kept across
 * records builds values without allocating once it has grown to size.
 *
 * A reduce function receives its accumulator as a Bytes (see `reduce`).
 */
export class Bytes {
  private buf: ArrayBuffer;
  private len: i32 = 0;
  private cached: Uint8Array;

  constructor(capacity: i32 = 64) {
    const buf = new ArrayBuffer(max(capacity, 16));
    this.buf = buf;
    this.cached = Uint8Array.wrap(buf, 0, 0);
  }

  /** The number of bytes held. */
  get length(): i32 {
    return this.len;
  }

  /** The size of the storage: appending up to this many bytes does not allocate. */
  get capacity(): i32 {
    return this.buf.byteLength;
  }

  /** The address of the first byte, for code that works with raw memory. Valid until the next append. */
  @unsafe get dataStart(): usize {
    return changetype<usize>(this.buf);
  }

  @operator("[]") private __get(i: i32): u8 {
    if (<u32>i >= <u32>this.len) unreachable();
    return load<u8>(changetype<usize>(this.buf) + <usize>i);
  }

  @operator("[]=") private __set(i: i32, b: u8): void {
    if (<u32>i >= <u32>this.len) unreachable();
    store<u8>(changetype<usize>(this.buf) + <usize>i, b);
  }

  /** Empties the buffer, keeping its storage. */
  clear(): Bytes {
    this.len = 0;
    return this;
  }

  /** Shortens the buffer to n bytes (n ≤ length). */
  truncate(n: i32): Bytes {
    if (<u32>n < <u32>this.len) this.len = n;
    return this;
  }

  /** Makes room for n more bytes and returns the address where they go; the caller must then write exactly n bytes there. */
  @unsafe reserve(n: i32): usize {
    this.grow(n);
    const p = changetype<usize>(this.buf) + <usize>this.len;
    this.len += n;
    return p;
  }

  /** Appends one byte. */
  push(b: u8): Bytes {
    if (this.len == this.buf.byteLength) this.grow(1);
    store<u8>(changetype<usize>(this.buf) + <usize>this.len, b);
    this.len++;
    return this;
  }

  /** Appends the bytes of src. */
  append(src: Uint8Array): Bytes {
    return this.appendRaw(src.dataStart, src.byteLength);
  }

  /** Appends src[start:end]. */
  appendRange(src: Uint8Array, start: i32, end: i32): Bytes {
    if (start < 0 || end > src.byteLength || start > end) unreachable();
    return this.appendRaw(src.dataStart + <usize>start, end - start);
  }

  /** Appends the contents of another Bytes. */
  appendBytes(src: Bytes): Bytes {
    return this.appendRaw(changetype<usize>(src.buf), src.len);
  }

  /** Appends s, encoded as UTF-8. */
  appendString(s: string): Bytes {
    const n = String.UTF8.byteLength(s);
    const p = this.reserve(n);
    String.UTF8.encodeUnsafe(changetype<usize>(s), s.length, p);
    return this;
  }

  /** Appends the decimal digits of n. */
  appendU64(n: u64): Bytes {
    this.grow(20);
    this.len += writeU64(changetype<usize>(this.buf) + <usize>this.len, n);
    return this;
  }

  /** Appends n bytes from the address p. */
  @unsafe appendRaw(p: usize, n: i32): Bytes {
    if (n > 0) {
      this.grow(n);
      memory.copy(changetype<usize>(this.buf) + <usize>this.len, p, <usize>n);
      this.len += n;
    }
    return this;
  }

  /**
   * A view of the current contents, without copying. The same Uint8Array
   * object is returned by every call on this Bytes, repointed each time; it
   * shows the contents as they were when view() was called and must not be
   * used after the Bytes changes. Use toUint8Array() for a copy to keep.
   */
  view(): Uint8Array {
    const v = this.cached;
    repointView(v, changetype<usize>(this.buf), this.len);
    return v;
  }

  /** A copy of the contents. */
  toUint8Array(): Uint8Array {
    const out = new Uint8Array(this.len);
    memory.copy(out.dataStart, changetype<usize>(this.buf), <usize>this.len);
    return out;
  }

  /** The contents decoded as UTF-8 (invalid sequences become U+FFFD). */
  toString(): string {
    return String.UTF8.decodeUnsafe(changetype<usize>(this.buf), this.len);
  }

  /** Equality of contents with a byte array. */
  equals(other: Uint8Array): bool {
    return this.len == other.byteLength && bytesEqual(changetype<usize>(this.buf), other.dataStart, <usize>this.len);
  }

  private grow(n: i32): void {
    const need = <u64>this.len + <u64>n;
    const cap = <u64>this.buf.byteLength;
    if (need <= cap) return;
    let size = max(need, cap * 2);
    if (size > <u64>MAX_BUFFER) size = need;
    if (size > <u64>MAX_BUFFER) unreachable();
    const nb = new ArrayBuffer(<i32>size);
    memory.copy(changetype<usize>(nb), changetype<usize>(this.buf), <usize>this.len);
    this.buf = nb;
    rebindView(this.cached, nb);
    repointView(this.cached, changetype<usize>(nb), 0);
  }
}

/** The largest buffer the AssemblyScript runtime allocates: just under 1 GiB. */
// @ts-ignore: decorator
@inline export const MAX_BUFFER: usize = (1 << 30) - 64;

/** Whether the n bytes at a and b are equal. */
export function bytesEqual(a: usize, b: usize, n: usize): bool {
  if (a == b) return true;
  while (n >= 8) {
    if (load<u64>(a) != load<u64>(b)) return false;
    a += 8;
    b += 8;
    n -= 8;
  }
  while (n > 0) {
    if (load<u8>(a) != load<u8>(b)) return false;
    a++;
    b++;
    n--;
  }
  return true;
}

/** Whether two byte arrays hold the same bytes. */
export function equal(a: Uint8Array, b: Uint8Array): bool {
  return a.byteLength == b.byteLength && bytesEqual(a.dataStart, b.dataStart, <usize>a.byteLength);
}

/** The UTF-8 bytes of s, in a new array (for constants: `const ONE = utf8("1")`). */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

/** The bytes of b decoded as UTF-8, in a new string (invalid sequences become U+FFFD). */
export function text(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, <usize>b.byteLength);
}
