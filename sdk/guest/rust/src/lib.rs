//! The Rust guest SDK of wasmgrid: plain Rust functions over byte slices
//! become a WebAssembly module that speaks the wasmgrid guest ABI v1
//! (`docs/abi.md`).
//!
//! A module registers its functions with [`register!`], which also defines
//! the module's exports (`wasmgrid_abi_version`, `wasmgrid_describe`,
//! `wasmgrid_alloc`, `wasmgrid_run`, `wasmgrid_output`):
//!
//! ```
//! use wasmgrid_guest::{Emit, Registry};
//!
//! /// flat_map: a record's value is a line; emits (word, "1") per word.
//! fn split(line: &[u8], emit: &mut Emit) {
//!     for word in line.split(|c| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()) {
//!         emit.emit(word, b"1");
//!     }
//! }
//!
//! /// reduce: acc holds a, and must hold a ⊕ b on return.
//! fn sum(acc: &mut Vec<u8>, b: &[u8]) -> Result<(), String> {
//!     let parse = |s: &[u8]| -> Result<u64, String> {
//!         std::str::from_utf8(s).ok().and_then(|s| s.parse().ok())
//!             .ok_or_else(|| format!("sum: {:?} is not a count", String::from_utf8_lossy(s)))
//!     };
//!     let total = parse(acc)? + parse(b)?;
//!     acc.clear();
//!     acc.extend_from_slice(total.to_string().as_bytes());
//!     Ok(())
//! }
//!
//! wasmgrid_guest::register!(|r: &mut Registry| {
//!     r.flat_map("split", split);
//!     r.map("upper", |k, v, out| {
//!         out.key.extend(k.iter().map(u8::to_ascii_uppercase));
//!         out.value.extend_from_slice(v);
//!     });
//!     r.filter("nonempty", |_k, v| !v.is_empty());
//!     r.reduce("sum", sum);
//! });
//! # fn main() {}
//! ```
//!
//! Build it as a `cdylib` for `wasm32-wasi` (the module is a WASI reactor:
//! it has no `_start`), with the release profile of the SDK's README:
//!
//! ```text
//! cargo build --release --target wasm32-wasi
//! ```
//!
//! or reproducibly with `sdk/guest/rust/build.sh CRATE_DIR OUT.wasm`.
//!
//! # The functions
//!
//! | kind | register with | the function |
//! |---|---|---|
//! | map | [`Registry::map`] | `Fn(key, value, &mut Record)`: fills the one output [`Record`] |
//! | flat_map | [`Registry::flat_map`] | `Fn(value, &mut Emit)`: calls [`Emit::emit`] zero or more times |
//! | flat_map | [`Registry::flat_map_pairs`] | `Fn(key, value, &mut Emit)` |
//! | filter | [`Registry::filter`] | `Fn(key, value) -> bool` |
//! | reduce | [`Registry::reduce`] | `Fn(acc: &mut Vec<u8>, b)`: turns `acc` from `a` into `a ⊕ b` |
//!
//! Keys and values are arbitrary bytes (`&[u8]`), valid for the duration of
//! the call. The order of registration is the order of the manifest.
//!
//! # Errors, panics and traps
//!
//! Every function may return its plain result (`()`, or `bool` for a
//! filter) or a `Result` of it. An `Err` fails the call as a **guest error**
//! (status 1) whose message is the error's bytes: return `Err(String)`,
//! `Err(&str)` or `Err(Vec<u8>)` (see [`Error`]). The first error ends the
//! call, and its output is discarded.
//!
//! A **panic** is not an error but a **trap**: modules are built with
//! `panic = "abort"`, so a panic (an `unwrap` of `None`, an index out of
//! bounds, an overflow in a debug build) prints its message to the guest's
//! stderr, which the host keeps, and aborts the instance. The host reports a
//! trap, and the task fails; it never calls into that instance again.
//!
//! # Performance
//!
//! A call decodes its records in place, with plain little-endian loads, and
//! pushes each one through the whole chain of functions before the next; no
//! record is allocated. [`Emit::emit`] appends to one output buffer reused
//! across calls, the input buffer is reused across calls, map output
//! [`Record`]s and [`Emit::emit_with`] buffers are reused from record to
//! record, and reduce folds into one reused accumulator. Once these have
//! grown to the working size, a call allocates nothing.
//!
//! # The exports
//!
//! The registry is built lazily, on the first export the host calls (Rust
//! has no life before `main`). [`register!`] defines the five functions in
//! the calling crate with `#[no_mangle]`, which is what puts them in the
//! cdylib's export section; the linker exports `memory` itself. Malformed
//! calls (a bad function count or index, a record that passes the end of
//! the batch, trailing bytes, a reduce not alone in its call) get status 2
//! and a message, as with every wasmgrid SDK.
//!
//! Natively, [`Registry::run`] runs a call without wasm: register into a
//! [`Registry::new`] with the same function you give [`register!`] (name it
//! rather than write a closure) to test and benchmark guest code with
//! `cargo test`.

#![warn(missing_docs)]

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod abi;
mod registry;
mod run;

pub use registry::{Emit, Error, Kind, Outcome, Record, Registry, ABI_VERSION};
pub use run::Status;

/// Defines the module's registration function and its guest ABI exports.
///
/// It takes a function (a closure without captures, or the path of a `fn`)
/// of `&mut Registry` that registers the module's functions, and must be
/// used exactly once, in the crate that is built as the `cdylib`:
///
/// ```
/// wasmgrid_guest::register!(|r: &mut wasmgrid_guest::Registry| {
///     r.filter("nonempty", |_k, v| !v.is_empty());
/// });
/// # fn main() {}
/// ```
///
/// The registration function runs once per instance, on the host's first
/// call into the module.
#[macro_export]
macro_rules! register {
    ($init:expr $(,)?) => {
        #[doc(hidden)]
        #[allow(dead_code)]
        fn __wasmgrid_register(r: &mut $crate::Registry) {
            let init: fn(&mut $crate::Registry) = $init;
            init(r)
        }

        /// Guest ABI v1: the ABI version, 1.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn wasmgrid_abi_version() -> i32 {
            $crate::abi::abi_version(__wasmgrid_register)
        }

        /// Guest ABI v1: `ptr << 32 | len` of the manifest.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn wasmgrid_describe() -> i64 {
            $crate::abi::describe(__wasmgrid_register)
        }

        /// Guest ABI v1: a buffer of at least `len` bytes for the next call.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn wasmgrid_alloc(len: i32) -> i32 {
            $crate::abi::alloc(__wasmgrid_register, len)
        }

        /// Guest ABI v1: runs the call at `ptr..ptr+len`; returns its status.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn wasmgrid_run(ptr: i32, len: i32) -> i32 {
            $crate::abi::run(__wasmgrid_register, ptr, len)
        }

        /// Guest ABI v1: `ptr << 32 | len` of the last call's output.
        #[cfg(target_arch = "wasm32")]
        #[no_mangle]
        pub extern "C" fn wasmgrid_output() -> i64 {
            $crate::abi::output(__wasmgrid_register)
        }
    };
}

#[cfg(test)]
mod tests;
