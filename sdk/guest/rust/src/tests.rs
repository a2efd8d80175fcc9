//! Native tests of the registry and of calls, against the behaviour of the Go
//! SDK (sdk/guest/go/run_test.go).

use crate::{Emit, Kind, Record, Registry, Status};

fn call(funcs: &[u32], recs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(funcs.len() as u32).to_le_bytes());
    for f in funcs {
        b.extend_from_slice(&f.to_le_bytes());
    }
    b.extend_from_slice(&batch(recs));
    b
}

fn batch(recs: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut b = (recs.len() as u32).to_le_bytes().to_vec();
    for (k, v) in recs {
        b.extend_from_slice(&(k.len() as u32).to_le_bytes());
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        b.extend_from_slice(k);
        b.extend_from_slice(v);
    }
    b
}

fn decode(b: &[u8]) -> Vec<(String, String)> {
    let n = u32::from_le_bytes(b[..4].try_into().unwrap());
    let mut p = &b[4..];
    let mut out = Vec::new();
    for _ in 0..n {
        let kl = u32::from_le_bytes(p[..4].try_into().unwrap()) as usize;
        let vl = u32::from_le_bytes(p[4..8].try_into().unwrap()) as usize;
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        out.push((s(&p[8..8 + kl]), s(&p[8 + kl..8 + kl + vl])));
        p = &p[8 + kl + vl..];
    }
    assert!(p.is_empty(), "{} bytes after the records", p.len());
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.map("upper", |k, v, out| {
        out.key.extend(k.iter().map(u8::to_ascii_uppercase));
        out.value.extend_from_slice(v);
    });
    r.flat_map("words", |v, emit| {
        for w in v.split(|&c| c == b' ').filter(|w| !w.is_empty()) {
            emit.emit(w, b"1");
        }
    });
    r.filter("short", |k, _| k.len() <= 3);
    r.reduce("cat", |acc, b| {
        acc.push(b'+');
        acc.extend_from_slice(b);
    });
    // An Err-only closure: the Ok type is inferred from Outcome.
    r.map("boom", |k, _v, _out| {
        Err(format!("boom on {}", String::from_utf8_lossy(k)))
    });
    r.flat_map_pairs("twice", |k, v, emit| {
        emit.emit(k, v);
        emit.emit_with(|key, value| {
            key.extend_from_slice(k);
            key.push(b'2');
            value.extend_from_slice(v);
        });
    });
    r.filter("checked", |_k, v| {
        if v == b"bad" {
            Err("checked: bad value")
        } else {
            Ok(true)
        }
    });
    r
}

#[test]
fn manifest() {
    let r = registry();
    assert_eq!(
        String::from_utf8(r.manifest()).unwrap(),
        "map upper\nflat_map words\nfilter short\nreduce cat\nmap boom\nflat_map twice\nfilter checked\n"
    );
    assert_eq!(r.index("cat"), Some(3));
    assert_eq!(r.index("nope"), None);
    assert_eq!(r.len(), 7);
    assert_eq!(Kind::FlatMap.to_string(), "flat_map");
}

fn run(
    r: &mut Registry,
    funcs: &[u32],
    recs: &[(&[u8], &[u8])],
) -> Result<Vec<(String, String)>, (Status, String)> {
    let c = call(funcs, recs);
    match r.run(&c) {
        (Status::Ok, out) => Ok(decode(out)),
        (s, msg) => Err((s, String::from_utf8_lossy(msg).into_owned())),
    }
}

#[test]
fn chains() {
    let mut r = registry();
    let lines: &[(&[u8], &[u8])] = &[(b"", b"the quick  brown fox"), (b"", b""), (b"x", b"a bb")];
    assert_eq!(
        run(&mut r, &[1, 2, 0], lines).unwrap(),
        pairs(&[("THE", "1"), ("FOX", "1"), ("A", "1"), ("BB", "1")])
    );
    assert_eq!(run(&mut r, &[1], &[]).unwrap(), pairs(&[]));
    assert_eq!(
        run(&mut r, &[5, 5, 0], &[(b"k", b"v")]).unwrap(),
        pairs(&[("K", "v"), ("K2", "v"), ("K2", "v"), ("K22", "v")])
    );
    // Empty keys and values, zero bytes.
    let odd: &[(&[u8], &[u8])] = &[(b"", b""), (b"a\x00b", b"\x00")];
    assert_eq!(
        run(&mut r, &[0], odd).unwrap(),
        pairs(&[("", ""), ("A\x00B", "\x00")])
    );
}

#[test]
fn reduce() {
    let mut r = registry();
    let recs: &[(&[u8], &[u8])] = &[
        (b"a", b"1"),
        (b"a", b"2"),
        (b"a", b"3"),
        (b"b", b"x"),
        (b"c", b""),
        (b"c", b""),
        (b"a", b"z"),
    ];
    assert_eq!(
        run(&mut r, &[3], recs).unwrap(),
        pairs(&[("a", "1+2+3"), ("b", "x"), ("c", "+"), ("a", "z")])
    );
    assert_eq!(run(&mut r, &[3], &[]).unwrap(), pairs(&[]));
    assert_eq!(
        run(&mut r, &[3], &[(b"k", b"only")]).unwrap(),
        pairs(&[("k", "only")])
    );
}

#[test]
fn errors() {
    let mut r = registry();
    assert_eq!(
        run(&mut r, &[4], &[(b"k1", b"v")]),
        Err((Status::UserError, "boom on k1".to_string()))
    );
    // A failure downstream of a flat_map, in the middle of its emits.
    assert_eq!(
        run(&mut r, &[1, 6], &[(b"", b"ok ok")]).unwrap(),
        pairs(&[("ok", "1"), ("ok", "1")])
    );
    assert_eq!(
        run(&mut r, &[5, 4], &[(b"k", b"v")]),
        Err((Status::UserError, "boom on k".to_string()))
    );
    assert_eq!(
        run(&mut r, &[6], &[(b"a", b"good"), (b"b", b"bad")]),
        Err((Status::UserError, "checked: bad value".to_string()))
    );
    // The registry works again after a failure.
    assert_eq!(
        run(&mut r, &[0], &[(b"k", b"v")]).unwrap(),
        pairs(&[("K", "v")])
    );
}

#[test]
fn malformed_calls() {
    let mut r = registry();
    let bad = |r: &mut Registry, c: &[u8]| -> String {
        let (s, msg) = r.run(c);
        assert_eq!(s, Status::BadCall, "{:?}", String::from_utf8_lossy(msg));
        String::from_utf8(msg.to_vec()).unwrap()
    };
    assert_eq!(bad(&mut r, b"\x01"), "call shorter than its function count");
    assert_eq!(
        bad(&mut r, &[0, 0, 0, 0, 0, 0, 0, 0]),
        "call names 0 functions but has 8 bytes"
    );
    assert_eq!(
        bad(&mut r, &[2, 0, 0, 0, 0, 0, 0, 0]),
        "call names 2 functions but has 8 bytes"
    );
    assert_eq!(
        bad(&mut r, &call(&[9], &[])),
        "function index 9 out of range: the module has 7 functions"
    );
    assert_eq!(
        bad(&mut r, &call(&[3, 3], &[])),
        "a reduce function must be called alone"
    );
    assert_eq!(
        bad(&mut r, &call(&[0, 3], &[])),
        "reduce function \"cat\" chained after other functions"
    );
    let mut c = call(&[0], &[(b"k", b"v")]);
    c.push(7);
    assert_eq!(bad(&mut r, &c), "1 bytes after the last of 1 records");
    let c = call(&[0], &[(b"k", b"v"), (b"k", b"v")]);
    assert_eq!(
        bad(&mut r, &c[..c.len() - 1]),
        "record 1 of 2: lengths 1+1 pass the end of the batch"
    );
    assert_eq!(
        bad(&mut r, &c[..c.len() - 7]),
        "record 1 of 2: truncated header"
    );
    let mut c = call(&[0], &[]);
    c[8] = 1;
    assert_eq!(bad(&mut r, &c), "record 0 of 1: truncated header");
    let mut c = call(&[0], &[(b"", b"")]);
    c[12..20].copy_from_slice(&[0xff; 8]);
    assert_eq!(
        bad(&mut r, &c),
        "record 0 of 1: lengths 4294967295+4294967295 pass the end of the batch"
    );
    // The function count's check covers the batch's count, as in Go.
    assert_eq!(
        bad(&mut r, &call(&[3], &[])[..11]),
        "call names 1 functions but has 11 bytes"
    );
}

#[test]
#[should_panic(expected = "invalid function name")]
fn invalid_name() {
    Registry::new().filter("9lives", |_, _| true);
}

#[test]
#[should_panic(expected = "registered twice")]
fn duplicate_name() {
    let mut r = Registry::new();
    r.filter("f", |_, _| true);
    r.filter("f", |_, _| false);
}

#[test]
fn names() {
    let mut r = Registry::new();
    r.filter("_a.b-C9", |_, _| true);
    r.filter(&"x".repeat(128), |_, _| true);
    let long =
        std::panic::catch_unwind(|| Registry::new().filter(&"x".repeat(129), |_, _| true).len());
    assert!(long.is_err());
}

#[test]
fn small_copies() {
    // Every length around the inline copy's thresholds.
    let mut r = Registry::new();
    r.map("id", |k, v, out: &mut Record| out.set(k, v));
    r.flat_map_pairs("fm", |k, v, emit: &mut Emit| emit.emit(k, v));
    let data: Vec<u8> = (0..40u8).collect();
    for n in 0..40 {
        for m in [0, 1, 3, 8, 17] {
            let got = run(&mut r, &[0, 1], &[(&data[..n], &data[40 - m..])]).unwrap();
            let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            assert_eq!(got, vec![(s(&data[..n]), s(&data[40 - m..]))]);
        }
    }
}
