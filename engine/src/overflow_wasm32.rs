//! Stack overflow detection does not exist on wasm32: no signals, and no page protection in
//! linear memory (see `stack_wasm32.rs`). Running off a continuation's own stack is trapped by
//! wasmtime; overflowing a shadow stack is not detected. These are the native module's entry
//! points, doing nothing, so the rest of the engine needs no `cfg`.

/// What the native handler reads about the running greenlet's stack (unused here).
#[derive(Clone, Copy)]
#[allow(dead_code)] // built by inner.rs for the native handler; nothing reads it on wasm32
pub(crate) struct GuardInfo {
    pub guard: (usize, usize),
    pub id: u64,
    pub name: *const str,
    pub size: usize,
}

pub(crate) type Lookup = fn() -> Option<GuardInfo>;

/// Nothing to register: there is no handler.
pub(crate) fn set_lookup(_: Lookup) {}

/// No signals, so no alternate signal stack.
pub(crate) fn ensure_altstack() {}
