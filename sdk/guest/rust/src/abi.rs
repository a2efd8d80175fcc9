//! The bodies of the guest ABI exports. [`register!`](crate::register)
//! defines the exports themselves in the user's crate, so that they are
//! exported from its cdylib, and has them call these with the user's
//! registration function.

use crate::registry::{Registry, ABI_VERSION};

struct State {
    reg: Registry,
    manifest: Vec<u8>,
    /// The input buffer that `wasmgrid_alloc` hands out; its length is the
    /// usable size, all of it initialised.
    input: Vec<u8>,
    /// The pointer and length `wasmgrid_output` returns.
    output: (usize, usize),
}

// A wasm instance runs one thread, and the host never calls an export while
// another one runs (user functions cannot reach the exports), so there is
// never more than one reference to the state alive.
static mut STATE: Option<State> = None;

/// The state, with the registry built on first use: there is no life before
/// main in Rust, so the first export the host calls registers the functions.
fn state(init: fn(&mut Registry)) -> &'static mut State {
    // SAFETY: see STATE.
    unsafe {
        if STATE.is_none() {
            let mut reg = Registry::new();
            init(&mut reg);
            let manifest = reg.manifest();
            STATE = Some(State {
                reg,
                manifest,
                input: Vec::new(),
                output: (0, 0),
            });
        }
        STATE.as_mut().unwrap()
    }
}

fn pack(ptr: usize, len: usize) -> i64 {
    if len == 0 {
        return 0;
    }
    ((ptr as u64) << 32 | len as u64) as i64
}

/// `wasmgrid_abi_version`.
pub fn abi_version(init: fn(&mut Registry)) -> i32 {
    state(init);
    ABI_VERSION
}

/// `wasmgrid_describe`.
pub fn describe(init: fn(&mut Registry)) -> i64 {
    let st = state(init);
    st.output = (st.manifest.as_ptr() as usize, st.manifest.len());
    pack(st.output.0, st.output.1)
}

/// `wasmgrid_alloc`: the input buffer, grown to at least `n` bytes. It grows
/// by a quarter at least, so that calls of slowly growing sizes do not
/// reallocate every time, and is never shrunk or zeroed again.
pub fn alloc(init: fn(&mut Registry), n: i32) -> i32 {
    let st = state(init);
    if n < 0 {
        return 0;
    }
    let n = n as usize;
    if st.input.len() < n || st.input.is_empty() {
        let old = st.input.len();
        st.input = Vec::new(); // free the old buffer first: it may be reused
        let mut buf = Vec::new();
        let want = n.max(64).max(old.saturating_add(old / 4));
        if buf.try_reserve_exact(want).is_err() && buf.try_reserve_exact(n.max(64)).is_err() {
            return 0;
        }
        buf.resize(buf.capacity(), 0);
        st.input = buf;
    }
    st.input.as_mut_ptr() as i32
}

const NOT_IN_BUFFER: &[u8] =
    b"wasmgrid_run: the call is not in the buffer returned by wasmgrid_alloc";

/// `wasmgrid_run`: the call must be in the buffer `wasmgrid_alloc` returned.
pub fn run(init: fn(&mut Registry), ptr: i32, len: i32) -> i32 {
    let st = state(init);
    if st.input.is_empty()
        || ptr as usize != st.input.as_ptr() as usize
        || len < 0
        || len as usize > st.input.len()
    {
        st.output = (NOT_IN_BUFFER.as_ptr() as usize, NOT_IN_BUFFER.len());
        return crate::Status::BadCall as i32;
    }
    let (status, out) = st.reg.run(&st.input[..len as usize]);
    st.output = (out.as_ptr() as usize, out.len());
    status as i32
}

/// `wasmgrid_output`.
pub fn output(init: fn(&mut Registry)) -> i64 {
    let st = state(init);
    pack(st.output.0, st.output.1)
}
