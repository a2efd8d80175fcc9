//! One call of the guest ABI (docs/abi.md, "A call"): decoding, the chain of
//! functions, reduce, and the output batch.

use crate::registry::{Body, Emit, Error, Func, Record, ReduceFn, Registry};

/// The status of a call, as `wasmgrid_run` returns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum Status {
    /// The output is a batch.
    Ok = 0,
    /// A user function returned an error; the output is its message.
    UserError = 1,
    /// The call was malformed; the output says why.
    BadCall = 2,
}

/// Why a call failed.
pub(crate) enum Failure {
    User(Error),
    Bad(String),
}

fn bad<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure::Bad(msg.into()))
}

#[inline(always)]
fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The output batch being built: the records, after four bytes that receive
/// the record count when the call ends.
#[derive(Default)]
pub(crate) struct Sink {
    out: Vec<u8>,
    count: u32,
}

impl Sink {
    fn reset(&mut self) {
        self.out.clear();
        self.out.extend_from_slice(&[0; 4]);
        self.count = 0;
    }

    /// Appends one record. It is the hottest path of every guest: one
    /// capacity check, two stores and two copies.
    #[inline(always)]
    pub(crate) fn push(&mut self, key: &[u8], value: &[u8]) {
        let need = 8 + key.len() + value.len();
        self.out.reserve(need);
        let len = self.out.len();
        // SAFETY: reserve made room for `need` more bytes, and the four
        // writes below initialise exactly those bytes before set_len.
        unsafe {
            let p = self.out.as_mut_ptr().add(len);
            (p as *mut [u8; 4]).write_unaligned((key.len() as u32).to_le_bytes());
            (p.add(4) as *mut [u8; 4]).write_unaligned((value.len() as u32).to_le_bytes());
            copy(p.add(8), key);
            copy(p.add(8 + key.len()), value);
            self.out.set_len(len + need);
        }
        self.count += 1;
    }

    fn finish(&mut self) -> &[u8] {
        self.out[..4].copy_from_slice(&self.count.to_le_bytes());
        &self.out
    }
}

/// Copies src to dst. Keys and values are often a few bytes long (words,
/// counts): up to 16 bytes, two possibly overlapping unaligned loads and
/// stores do it inline, cheaper than a call to libc's memcpy (a loop in
/// wasm) or, with bulk memory, a `memory.copy` (a call into the runtime).
///
/// # Safety
///
/// dst must be valid for writing src.len() bytes, and not overlap src.
#[inline(always)]
unsafe fn copy(dst: *mut u8, src: &[u8]) {
    let n = src.len();
    let s = src.as_ptr();
    if n >= 8 {
        if n > 16 {
            std::ptr::copy_nonoverlapping(s, dst, n);
            return;
        }
        let a = (s as *const u64).read_unaligned();
        let b = (s.add(n - 8) as *const u64).read_unaligned();
        (dst as *mut u64).write_unaligned(a);
        (dst.add(n - 8) as *mut u64).write_unaligned(b);
    } else if n >= 4 {
        let a = (s as *const u32).read_unaligned();
        let b = (s.add(n - 4) as *const u32).read_unaligned();
        (dst as *mut u32).write_unaligned(a);
        (dst.add(n - 4) as *mut u32).write_unaligned(b);
    } else if n > 0 {
        // 1 to 3 bytes: the first, the middle and the last.
        *dst = *s;
        *dst.add(n / 2) = *s.add(n / 2);
        *dst.add(n - 1) = *s.add(n - 1);
    }
}

impl Registry {
    /// Runs one call of the guest ABI (`u32le n_funcs | u32le func_index ×
    /// n_funcs | batch`) and returns its status and output: the output batch
    /// for [`Status::Ok`], a message otherwise. The output is valid until the
    /// next call. It is what the `wasmgrid_run` export does, and it runs
    /// natively too, for tests and benchmarks.
    pub fn run(&mut self, call: &[u8]) -> (Status, &[u8]) {
        self.sink.reset();
        match self.run_call(call) {
            Ok(()) => (Status::Ok, self.sink.finish()),
            Err(Failure::User(e)) => {
                self.msg = e.into_bytes();
                (Status::UserError, &self.msg)
            }
            Err(Failure::Bad(m)) => {
                self.msg = m.into_bytes();
                (Status::BadCall, &self.msg)
            }
        }
    }

    fn run_call(&mut self, call: &[u8]) -> Result<(), Failure> {
        if call.len() < 4 {
            return bad("call shorter than its function count");
        }
        let n = le32(call, 0) as usize;
        if n == 0 || (call.len() as u64) < 4 + 4 * n as u64 + 4 {
            return bad(format!(
                "call names {} functions but has {} bytes",
                n,
                call.len()
            ));
        }
        self.chain.clear();
        for i in 0..n {
            let idx = le32(call, 4 + 4 * i);
            if idx as usize >= self.funcs.len() {
                return bad(format!(
                    "function index {} out of range: the module has {} functions",
                    idx,
                    self.funcs.len()
                ));
            }
            self.chain.push(idx as usize);
        }
        let batch = &call[4 + 4 * n..];
        if let Body::Reduce(f) = &self.funcs[self.chain[0]].body {
            if n != 1 {
                return bad("a reduce function must be called alone");
            }
            return reduce(f, batch, &mut self.sink, &mut self.acc);
        }
        for &i in &self.chain[1..] {
            if let Body::Reduce(_) = self.funcs[i].body {
                return bad(format!(
                    "reduce function {:?} chained after other functions",
                    self.funcs[i].name
                ));
            }
        }
        if self.scratch.len() < n {
            self.scratch.resize_with(n, Record::default);
        }
        let (funcs, chain, scratch, sink) = (
            &self.funcs[..],
            &self.chain[..],
            &mut self.scratch[..],
            &mut self.sink,
        );
        each_record(batch, |k, v| push(funcs, chain, scratch, sink, k, v))
    }
}

/// Pushes one record through the functions of `chain` (indexes into
/// `funcs`); whatever comes out of the last one goes into `sink`. `scratch`
/// has one record buffer per function of the chain.
pub(crate) fn push(
    funcs: &[Func],
    chain: &[usize],
    scratch: &mut [Record],
    sink: &mut Sink,
    key: &[u8],
    value: &[u8],
) -> Result<(), Error> {
    let (&first, rest) = match chain.split_first() {
        Some(x) => x,
        None => {
            sink.push(key, value);
            return Ok(());
        }
    };
    let (own, scratch) = scratch
        .split_first_mut()
        .expect("wasmgrid guest: scratch shorter than the chain");
    match &funcs[first].body {
        Body::Map(f) => {
            own.clear();
            f(key, value, own)?;
            push(funcs, rest, scratch, sink, &own.key, &own.value)
        }
        Body::Filter(f) => {
            if f(key, value)? {
                push(funcs, rest, scratch, sink, key, value)
            } else {
                Ok(())
            }
        }
        Body::FlatMap(f) => {
            let mut emit = Emit {
                funcs,
                chain: rest,
                scratch,
                own,
                sink,
                err: None,
            };
            let r = f(key, value, &mut emit);
            // A failure downstream happened first: it is the one to report.
            match emit.err {
                Some(e) => Err(e),
                None => r,
            }
        }
        Body::Reduce(_) => unreachable!("wasmgrid guest: reduce in a chain"),
    }
}

/// Folds each run of equal keys of `batch` with `f` and emits one record per
/// run. A run of one record is emitted as it is, without a copy into `acc`.
fn reduce(f: &ReduceFn, batch: &[u8], sink: &mut Sink, acc: &mut Vec<u8>) -> Result<(), Failure> {
    let mut run: Option<(&[u8], &[u8])> = None; // the run's key and first value
    let mut folded = false; // whether acc holds the run's value
    each_record(batch, |k, v| {
        if let Some((key, first)) = run {
            if k == key {
                if !folded {
                    acc.clear();
                    acc.extend_from_slice(first);
                    folded = true;
                }
                return f(acc, v);
            }
            sink.push(key, if folded { acc } else { first });
        }
        run = Some((k, v));
        folded = false;
        Ok(())
    })?;
    if let Some((key, first)) = run {
        sink.push(key, if folded { acc } else { first });
    }
    Ok(())
}

/// Calls `f` for every record of a batch, or says why the batch is
/// malformed. Records before a malformed one have been passed to `f`.
fn each_record<'b>(
    batch: &'b [u8],
    mut f: impl FnMut(&'b [u8], &'b [u8]) -> Result<(), Error>,
) -> Result<(), Failure> {
    if batch.len() < 4 {
        return bad("batch shorter than its record count");
    }
    let n = le32(batch, 0);
    let mut p = &batch[4..];
    for i in 0..n {
        if p.len() < 8 {
            return bad(format!("record {} of {}: truncated header", i, n));
        }
        let (kl, vl) = (le32(p, 0), le32(p, 4));
        if ((p.len() - 8) as u64) < kl as u64 + vl as u64 {
            return bad(format!(
                "record {} of {}: lengths {}+{} pass the end of the batch",
                i, n, kl, vl
            ));
        }
        let (k, rest) = p[8..].split_at(kl as usize);
        let (v, rest) = rest.split_at(vl as usize);
        p = rest;
        f(k, v).map_err(Failure::User)?;
    }
    if !p.is_empty() {
        return bad(format!("{} bytes after the last of {} records", p.len(), n));
    }
    Ok(())
}
