//! The word-count guest module written in Rust: `flat_map split` and
//! `reduce sum`, with the semantics of docs/conformance.md § Word count
//! (the same output as the Go guest, `examples/wordcount/wordcount.go`).
//! Build it with
//!
//! ```text
//! sdk/guest/rust/build.sh examples/wordcount/guest/rust examples/wordcount/guest/rust/guest.wasm
//! ```

use wasmgrid_guest::{Emit, Registry};

// split looks at eight bytes at a time (SWAR: SIMD within a register): one
// 64-bit load and a dozen arithmetic operations classify eight bytes, and a
// trailing-zero count finds where a word or the gap before it ends. Most gaps
// and words are shorter than eight bytes, so a word usually costs one step of
// split's loop and no other loop at all. That is faster than a loop over
// bytes, and much faster when the host checks for deadlines at every loop
// iteration (wasmexec does, unless Config.NoInterrupt is set).

const HIGH: u64 = 0x8080_8080_8080_8080;
const ONES: u64 = 0x0101_0101_0101_0101;

/// Bit 7 set in each byte of x that lies in lo..=hi; every byte of x must be
/// below 0x80, so that no sum carries into the next byte.
#[inline(always)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    let ge = x + ONES * u64::from(0x80 - lo); // bit 7 set iff byte >= lo
    let le = !(x + ONES * u64::from(0x7f - hi)); // bit 7 set iff byte <= hi
    ge & le & HIGH
}

/// Classifies the eight bytes of w: bit 7 of a byte of the first result is
/// set iff the byte is an ASCII letter or digit, of the second iff it is an
/// uppercase ASCII letter.
#[inline(always)]
fn classify(w: u64) -> (u64, u64) {
    let ascii = !w & HIGH;
    let x = w & !HIGH;
    let alpha = in_range(x | (ONES * 0x20), b'a', b'z'); // folds A-Z onto a-z
    let digit = in_range(x, b'0', b'9');
    let upper = alpha & !(x << 2); // bit 5 (0x20), shifted to 7, is clear in A-Z
    ((alpha | digit) & ascii, upper & ascii)
}

/// The eight bytes of line from i < line.len(), little-endian, padded with
/// zero bytes (which separate words) past the end, without a loop.
#[inline(always)]
fn load(line: &[u8], i: usize) -> u64 {
    let n = line.len();
    let le64 = |b: &[u8]| u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    if i + 8 <= n {
        return le64(&line[i..i + 8]);
    }
    let rem = n - i; // 1 to 7
    if n >= 8 {
        return le64(&line[n - 8..]) >> (8 * (8 - rem));
    }
    let s = &line[i..];
    let (mut w, mut o) = (0u64, 0);
    if rem & 4 != 0 {
        w = u64::from(u32::from_le_bytes([s[0], s[1], s[2], s[3]]));
        o = 4;
    }
    if rem & 2 != 0 {
        w |= u64::from(u16::from_le_bytes([s[o], s[o + 1]])) << (8 * o);
        o += 2;
    }
    if rem & 1 != 0 {
        w |= u64::from(s[o]) << (8 * o);
    }
    w
}

/// The bytes of a chunk before offset k (0 to 7), as a mask.
#[inline(always)]
fn below(k: usize) -> u64 {
    (1u64 << (8 * k)) - 1
}

/// Where the run of word bytes (word = true) or of separators (word = false)
/// that continues at i ends, and for a word whether it has an uppercase
/// letter from i on.
#[inline(never)]
fn run_end(line: &[u8], mut i: usize, word: bool) -> (usize, bool) {
    let mut upper = 0;
    while i < line.len() {
        let (alnum, up) = classify(load(line, i));
        let stop = if word { !alnum & HIGH } else { alnum };
        if stop != 0 {
            let k = stop.trailing_zeros() as usize / 8;
            return (i + k, upper | (up & below(k)) != 0);
        }
        upper |= up;
        i += 8;
    }
    (line.len(), upper != 0)
}

/// Emits (word, "1") for every word of the line: a word is a maximal run of
/// ASCII letters and digits, lowercased; every other byte separates words.
/// The record's key is ignored.
pub fn split(line: &[u8], emit: &mut Emit) {
    let n = line.len();
    let mut i = 0;
    while i < n {
        // The gap before the word: one chunk, or more in a loop.
        let (alnum, _) = classify(load(line, i));
        if alnum != 0 {
            i += alnum.trailing_zeros() as usize / 8;
        } else {
            i = run_end(line, i + 8, false).0;
            if i >= n {
                return;
            }
        }
        // The word: up to seven bytes in one chunk, or more in a loop.
        let chunk = load(line, i);
        let (alnum, up) = classify(chunk);
        let stop = !alnum & HIGH;
        if stop != 0 {
            let k = stop.trailing_zeros() as usize / 8;
            let up = up & below(k);
            if up == 0 {
                emit.emit(&line[i..i + k], b"1");
            } else {
                // Lowercase: set bit 5 (0x20) of the uppercase letters.
                let lower = (chunk | up >> 2).to_le_bytes();
                emit.emit(&lower[..k], b"1");
            }
            i += k;
        } else {
            let (end, upper) = run_end(line, i + 8, true);
            let word = &line[i..end];
            if upper || up != 0 {
                emit.emit_with(|key, value| {
                    key.extend(word.iter().map(u8::to_ascii_lowercase));
                    value.push(b'1');
                });
            } else {
                emit.emit(word, b"1");
            }
            i = end;
        }
    }
}

/// Parses a decimal count: one or more ASCII digits that fit in 64 bits.
fn parse_count(s: &[u8]) -> Result<u64, String> {
    let bad = || {
        format!(
            "sum: value is not a decimal count: {:?}",
            String::from_utf8_lossy(s)
        )
    };
    if s.is_empty() {
        return Err(bad());
    }
    let mut n: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return Err(bad());
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or_else(bad)?;
    }
    Ok(n)
}

/// Adds two decimal counts: `acc` holds a on entry and a + b on return.
pub fn sum(acc: &mut Vec<u8>, b: &[u8]) -> Result<(), String> {
    let total = parse_count(acc)?.wrapping_add(parse_count(b)?);
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = total;
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    acc.clear();
    acc.extend_from_slice(&digits[i..]);
    Ok(())
}

fn register(r: &mut Registry) {
    r.flat_map("split", split);
    r.reduce("sum", sum);
}

wasmgrid_guest::register!(register);
