//! The registry of a module's functions, the types user functions see, and
//! the manifest.

use std::fmt;

use crate::run::Sink;

/// The guest ABI version this SDK implements (`wasmgrid_abi_version`).
pub const ABI_VERSION: i32 = 1;

/// The kind of a guest function, as the manifest names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One record in, exactly one record out.
    Map,
    /// One record in, zero or more records out.
    FlatMap,
    /// One record in, the same record or nothing out.
    Filter,
    /// Two values of one key in, one value out.
    Reduce,
}

impl Kind {
    /// The kind's name in the manifest: `map`, `flat_map`, `filter` or `reduce`.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Map => "map",
            Kind::FlatMap => "flat_map",
            Kind::Filter => "filter",
            Kind::Reduce => "reduce",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a user function failed. The host reports it as a guest error (status
/// 1) whose message is these bytes, as they are.
///
/// It converts from `String`, `&str`, `Vec<u8>`, `&[u8]` and boxed standard
/// errors, so a function can return `Err(format!(...))`, `Err("...")` or
/// `Err(bytes)`, and use `?` on them. For any other error type, map it:
/// `s.parse::<u64>().map_err(|e| e.to_string())?`, or use [`Error::msg`].
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Vec<u8>);

impl Error {
    /// An error whose message is `m` formatted with `Display`.
    pub fn msg(m: impl fmt::Display) -> Error {
        Error(m.to_string().into_bytes())
    }

    /// The message, as the host receives it.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The message, as the host receives it.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?})", String::from_utf8_lossy(&self.0))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.0))
    }
}

impl From<String> for Error {
    fn from(s: String) -> Error {
        Error(s.into_bytes())
    }
}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error(s.as_bytes().to_vec())
    }
}

impl From<Vec<u8>> for Error {
    fn from(b: Vec<u8>) -> Error {
        Error(b)
    }
}

impl From<&[u8]> for Error {
    fn from(b: &[u8]) -> Error {
        Error(b.to_vec())
    }
}

impl From<Box<dyn std::error::Error>> for Error {
    fn from(e: Box<dyn std::error::Error>) -> Error {
        Error::msg(e)
    }
}

impl From<Box<dyn std::error::Error + Send + Sync>> for Error {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Error {
        Error::msg(e)
    }
}

/// What a user function may return: the plain value (`()` for map,
/// flat_map and reduce, `bool` for filter) when it cannot fail, or a
/// `Result` of it whose error converts into [`Error`].
pub trait Outcome<T> {
    /// The outcome as a `Result`.
    fn into_result(self) -> Result<T, Error>;
}

impl Outcome<()> for () {
    #[inline(always)]
    fn into_result(self) -> Result<(), Error> {
        Ok(())
    }
}

impl<E: Into<Error>> Outcome<()> for Result<(), E> {
    #[inline(always)]
    fn into_result(self) -> Result<(), Error> {
        self.map_err(Into::into)
    }
}

impl Outcome<bool> for bool {
    #[inline(always)]
    fn into_result(self) -> Result<bool, Error> {
        Ok(self)
    }
}

impl<E: Into<Error>> Outcome<bool> for Result<bool, E> {
    #[inline(always)]
    fn into_result(self) -> Result<bool, Error> {
        self.map_err(Into::into)
    }
}

/// The record a map function produces. It arrives with both fields empty
/// (their storage is reused from record to record, so filling them does not
/// allocate once they have grown to the working size); the function fills
/// them.
#[derive(Default, Debug)]
pub struct Record {
    /// The output record's key.
    pub key: Vec<u8>,
    /// The output record's value.
    pub value: Vec<u8>,
}

impl Record {
    /// Sets the record to copies of `key` and `value`.
    #[inline]
    pub fn set(&mut self, key: &[u8], value: &[u8]) {
        self.key.clear();
        self.key.extend_from_slice(key);
        self.value.clear();
        self.value.extend_from_slice(value);
    }

    #[inline]
    pub(crate) fn clear(&mut self) {
        self.key.clear();
        self.value.clear();
    }
}

pub(crate) type MapFn = Box<dyn Fn(&[u8], &[u8], &mut Record) -> Result<(), Error>>;
pub(crate) type FlatMapFn = Box<dyn Fn(&[u8], &[u8], &mut Emit<'_>) -> Result<(), Error>>;
pub(crate) type FilterFn = Box<dyn Fn(&[u8], &[u8]) -> Result<bool, Error>>;
pub(crate) type ReduceFn = Box<dyn Fn(&mut Vec<u8>, &[u8]) -> Result<(), Error>>;

pub(crate) enum Body {
    Map(MapFn),
    FlatMap(FlatMapFn),
    Filter(FilterFn),
    Reduce(ReduceFn),
}

pub(crate) struct Func {
    pub(crate) name: String,
    pub(crate) body: Body,
}

impl Func {
    pub(crate) fn kind(&self) -> Kind {
        match self.body {
            Body::Map(_) => Kind::Map,
            Body::FlatMap(_) => Kind::FlatMap,
            Body::Filter(_) => Kind::Filter,
            Body::Reduce(_) => Kind::Reduce,
        }
    }
}

/// A module's functions, in registration order, which is the order of the
/// manifest (a function's index in calls is its position here).
///
/// A module builds its registry in the function it gives to
/// [`register!`](crate::register); a `Registry` of one's own, with
/// [`Registry::run`], runs guest code natively, in tests and benchmarks.
///
/// Registering a name that is not `[A-Za-z_][A-Za-z0-9_.-]{0,127}`, or a name
/// twice, panics: the module then traps when the host loads it, and the
/// panic message, which points at the registration, reaches the host in the
/// guest's stderr.
#[derive(Default)]
pub struct Registry {
    pub(crate) funcs: Vec<Func>,
    // Scratch state reused across calls, so that a call allocates nothing
    // once the buffers have grown to the working size.
    pub(crate) chain: Vec<usize>,
    pub(crate) scratch: Vec<Record>,
    pub(crate) sink: Sink,
    pub(crate) acc: Vec<u8>,
    pub(crate) msg: Vec<u8>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Registry {
        Registry::default()
    }

    #[track_caller]
    fn add(&mut self, name: &str, body: Body) -> &mut Registry {
        if !valid_name(name) {
            panic!(
                "wasmgrid guest: invalid function name {:?}: names match [A-Za-z_][A-Za-z0-9_.-]{{0,127}}",
                name
            );
        }
        if self.funcs.iter().any(|f| f.name == name) {
            panic!("wasmgrid guest: function {:?} registered twice", name);
        }
        self.funcs.push(Func {
            name: name.to_string(),
            body,
        });
        self
    }

    /// Registers a function that turns each record into exactly one record,
    /// which it writes into `out` (see [`Record`]):
    ///
    /// ```
    /// # let mut r = wasmgrid_guest::Registry::new();
    /// r.map("swap", |k, v, out| out.set(v, k));
    /// r.map("upper", |k, v, out| {
    ///     out.key.extend(k.iter().map(u8::to_ascii_uppercase));
    ///     out.value.extend_from_slice(v);
    /// });
    /// ```
    #[track_caller]
    pub fn map<F, R>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(&[u8], &[u8], &mut Record) -> R + 'static,
        R: Outcome<()>,
    {
        self.add(
            name,
            Body::Map(Box::new(move |k, v, out| f(k, v, out).into_result())),
        )
    }

    /// Registers a function of a record's value (the key is ignored) that
    /// emits zero or more records with [`Emit::emit`]:
    ///
    /// ```
    /// # let mut r = wasmgrid_guest::Registry::new();
    /// r.flat_map("words", |line, emit| {
    ///     for w in line.split(|&c| c == b' ').filter(|w| !w.is_empty()) {
    ///         emit.emit(w, b"1");
    ///     }
    /// });
    /// ```
    #[track_caller]
    pub fn flat_map<F, R>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(&[u8], &mut Emit<'_>) -> R + 'static,
        R: Outcome<()>,
    {
        self.add(
            name,
            Body::FlatMap(Box::new(move |_, v, emit| f(v, emit).into_result())),
        )
    }

    /// Registers a function of a record's key and value that emits zero or
    /// more records with [`Emit::emit`].
    #[track_caller]
    pub fn flat_map_pairs<F, R>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(&[u8], &[u8], &mut Emit<'_>) -> R + 'static,
        R: Outcome<()>,
    {
        self.add(
            name,
            Body::FlatMap(Box::new(move |k, v, emit| f(k, v, emit).into_result())),
        )
    }

    /// Registers a predicate: a record passes iff it returns `true`.
    ///
    /// ```
    /// # let mut r = wasmgrid_guest::Registry::new();
    /// r.filter("nonempty", |_k, v| !v.is_empty());
    /// ```
    #[track_caller]
    pub fn filter<F, R>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(&[u8], &[u8]) -> R + 'static,
        R: Outcome<bool>,
    {
        self.add(
            name,
            Body::Filter(Box::new(move |k, v| f(k, v).into_result())),
        )
    }

    /// Registers an associative and commutative combination of two values of
    /// one key. `acc` holds `a` on entry and must hold `a ⊕ b` on return; it
    /// is one buffer reused for every run of every call, so folding does not
    /// allocate once it has grown to the working size:
    ///
    /// ```
    /// # let mut r = wasmgrid_guest::Registry::new();
    /// r.reduce("concat", |acc, b| {
    ///     acc.push(b'+');
    ///     acc.extend_from_slice(b);
    /// });
    /// ```
    #[track_caller]
    pub fn reduce<F, R>(&mut self, name: &str, f: F) -> &mut Registry
    where
        F: Fn(&mut Vec<u8>, &[u8]) -> R + 'static,
        R: Outcome<()>,
    {
        self.add(
            name,
            Body::Reduce(Box::new(move |acc, b| f(acc, b).into_result())),
        )
    }

    /// The module's manifest: one `KIND NAME\n` line per function.
    pub fn manifest(&self) -> Vec<u8> {
        let mut m = Vec::new();
        for f in &self.funcs {
            m.extend_from_slice(f.kind().as_str().as_bytes());
            m.push(b' ');
            m.extend_from_slice(f.name.as_bytes());
            m.push(b'\n');
        }
        m
    }

    /// The manifest index of the named function.
    pub fn index(&self, name: &str) -> Option<u32> {
        self.funcs
            .iter()
            .position(|f| f.name == name)
            .map(|i| i as u32)
    }

    /// The number of functions registered.
    pub fn len(&self) -> usize {
        self.funcs.len()
    }

    /// Whether no function is registered.
    pub fn is_empty(&self) -> bool {
        self.funcs.is_empty()
    }
}

/// Reports whether `s` matches `[A-Za-z_][A-Za-z0-9_.-]{0,127}`.
fn valid_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b.iter().enumerate().all(|(i, &c)| {
            c == b'_'
                || c.is_ascii_alphabetic()
                || (i > 0 && (c.is_ascii_digit() || c == b'.' || c == b'-'))
        })
}

/// Where a flat_map function sends the records it produces: on to the next
/// function of the call's chain, or into the call's output batch.
///
/// If a function further down the chain fails, `emit` remembers the first
/// error and ignores the records that follow; the call then fails with that
/// error whatever the flat_map function returns. A long-running flat_map
/// function can stop early when [`Emit::failed`] says so.
pub struct Emit<'a> {
    pub(crate) funcs: &'a [Func],
    pub(crate) chain: &'a [usize],
    pub(crate) scratch: &'a mut [Record],
    pub(crate) own: &'a mut Record,
    pub(crate) sink: &'a mut Sink,
    pub(crate) err: Option<Error>,
}

impl Emit<'_> {
    /// Emits the record `(key, value)`. It is copied (into the output batch
    /// or through the functions that follow), so the caller may reuse its
    /// buffers at once.
    #[inline]
    pub fn emit(&mut self, key: &[u8], value: &[u8]) {
        if self.chain.is_empty() {
            // The common case: this function is the last of the chain.
            if self.err.is_none() {
                self.sink.push(key, value);
            }
            return;
        }
        self.forward(key, value);
    }

    #[inline(never)]
    fn forward(&mut self, key: &[u8], value: &[u8]) {
        if self.err.is_none() {
            if let Err(e) =
                crate::run::push(self.funcs, self.chain, self.scratch, self.sink, key, value)
            {
                self.err = Some(e);
            }
        }
    }

    /// Emits a record built in place: `build` gets an empty key and an empty
    /// value buffer to fill, whose storage the SDK reuses from record to
    /// record. It saves an allocation when a record's bytes are computed
    /// rather than sliced from the input:
    ///
    /// ```
    /// # let mut r = wasmgrid_guest::Registry::new();
    /// r.flat_map("lower_words", |line, emit| {
    ///     for w in line.split(|&c| c == b' ').filter(|w| !w.is_empty()) {
    ///         emit.emit_with(|key, value| {
    ///             key.extend(w.iter().map(u8::to_ascii_lowercase));
    ///             value.push(b'1');
    ///         });
    ///     }
    /// });
    /// ```
    #[inline]
    pub fn emit_with(&mut self, build: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>)) {
        if self.err.is_some() {
            return;
        }
        let own = &mut *self.own;
        own.clear();
        build(&mut own.key, &mut own.value);
        if self.chain.is_empty() {
            self.sink.push(&own.key, &own.value);
        } else if let Err(e) = crate::run::push(
            self.funcs,
            self.chain,
            self.scratch,
            self.sink,
            &own.key,
            &own.value,
        ) {
            self.err = Some(e);
        }
    }

    /// Whether a function further down the chain has failed: the call will
    /// fail, and further records are ignored.
    #[inline]
    pub fn failed(&self) -> bool {
        self.err.is_some()
    }
}
