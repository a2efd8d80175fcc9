//! The word-count guest module written in Rust: `flat_map split` and
//! `reduce sum`, with the semantics of docs/conformance.md § Word count
//! (the same output as the Go guest, `examples/wordcount/wordcount.go`).
//! Build it with
//!
//! ```text
//! sdk/guest/rust/build.sh examples/wordcount/guest/rust examples/wordcount/guest/rust/guest.wasm
//! ```

use wasmgrid_guest::{Emit, Registry};

/// The class of every byte: 0 separates words, 1 is a lowercase letter or a
/// digit, 2 an uppercase letter.
static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = if b.is_ascii_uppercase() {
            2
        } else if b.is_ascii_lowercase() || b.is_ascii_digit() {
            1
        } else {
            0
        };
        c += 1;
    }
    t
};

/// Emits (word, "1") for every word of the line: a word is a maximal run of
/// ASCII letters and digits, lowercased; every other byte separates words.
/// The record's key is ignored.
pub fn split(line: &[u8], emit: &mut Emit) {
    let n = line.len();
    let mut i = 0;
    while i < n {
        while i < n && CLASS[line[i] as usize] == 0 {
            i += 1;
        }
        let start = i;
        let mut seen = 0;
        while i < n {
            let c = CLASS[line[i] as usize];
            if c == 0 {
                break;
            }
            seen |= c;
            i += 1;
        }
        if start == i {
            break;
        }
        let word = &line[start..i];
        if seen & 2 == 0 {
            emit.emit(word, b"1");
        } else {
            emit.emit_with(|key, value| {
                key.extend(word.iter().map(u8::to_ascii_lowercase));
                value.push(b'1');
            });
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
