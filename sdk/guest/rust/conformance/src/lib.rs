//! The Rust guest SDK's conformance module: the functions of
//! docs/conformance.md, in its order, which every guest SDK implements alike.
//! Build it with `sdk/guest/rust/build.sh sdk/guest/rust/conformance conformance.wasm`.

use wasmgrid_guest::{Emit, Record, Registry};

/// Parses a decimal count as Go's `strconv.ParseUint(s, 10, 64)` does:
/// `Err(0)` for anything but one or more ASCII digits, `Err(u64::MAX)` when
/// the digits overflow 64 bits.
fn parse_u64(s: &[u8]) -> Result<u64, u64> {
    if s.is_empty() {
        return Err(0);
    }
    let mut n: u64 = 0;
    let mut overflow = false;
    for &c in s {
        if !c.is_ascii_digit() {
            return Err(0);
        }
        match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
        {
            Some(m) => n = m,
            None => overflow = true,
        }
    }
    if overflow {
        Err(u64::MAX)
    } else {
        Ok(n)
    }
}

/// Appends the decimal digits of n to buf.
fn append_u64(buf: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[i..]);
}

fn upper(k: &[u8], v: &[u8], out: &mut Record) {
    out.key.extend(k.iter().map(u8::to_ascii_uppercase));
    out.value.extend(v.iter().map(u8::to_ascii_uppercase));
}

fn explode(k: &[u8], v: &[u8], emit: &mut Emit) {
    let n = parse_u64(v).unwrap_or(0);
    for i in 0..n {
        emit.emit_with(|key, value| {
            key.extend_from_slice(k);
            append_u64(value, i);
        });
        if emit.failed() {
            return;
        }
    }
}

fn sum(acc: &mut Vec<u8>, b: &[u8]) {
    // As Go's ParseUint with its error ignored: 0 for junk, the maximum on
    // overflow, and a sum that wraps.
    let x = parse_u64(acc).unwrap_or_else(|e| e);
    let y = parse_u64(b).unwrap_or_else(|e| e);
    acc.clear();
    append_u64(acc, x.wrapping_add(y));
}

fn fail(k: &[u8], _v: &[u8], _out: &mut Record) -> Result<(), Vec<u8>> {
    let mut msg = b"fail: refusing record ".to_vec();
    msg.extend_from_slice(k);
    Err(msg)
}

fn fail_after(k: &[u8], v: &[u8], emit: &mut Emit) -> Result<(), &'static str> {
    if k == b"boom" {
        return Err("fail_after: boom");
    }
    emit.emit(k, v);
    Ok(())
}

fn register(r: &mut Registry) {
    r.map("identity", |k, v, out| out.set(k, v));
    r.map("swap", |k, v, out| out.set(v, k));
    r.map("upper", upper);
    r.flat_map_pairs("explode", explode);
    r.filter("nonempty", |_k, v| !v.is_empty());
    r.reduce("concat", |acc, b| {
        acc.push(b'+');
        acc.extend_from_slice(b);
    });
    r.reduce("sum", sum);
    r.map("fail", fail);
    r.map("trap", |_k, _v, _out| std::process::abort());
    r.flat_map_pairs("fail_after", fail_after);
}

wasmgrid_guest::register!(register);
