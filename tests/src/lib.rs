//! greenlet-conformance: the cross-target conformance harness.
//!
//! - [`scenarios`]: the scenario library, compiled natively (here) and for wasm32 (by
//!   `tests/guest`), each scenario reporting its events;
//! - [`bench`](mod@bench): the switch benchmark's workload, on both targets;
//! - `host` (not on wasm32): wasmtime with stack switching, the runtime module
//!   (`asm/wasm/greenlet_rt.wat`) and the guest, wired together.
//!
//! The tests in `tests/tests/` compare the native and the wasm event lists scenario by
//! scenario, and test the runtime module on its own.

pub mod bench;
#[cfg(not(target_arch = "wasm32"))]
pub mod host;
pub mod scenarios;
