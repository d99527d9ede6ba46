//! `cargo xtask ci`, step `wasm`: the engine on `wasm32-unknown-unknown` (see README,
//! WebAssembly).
//!
//! - Clippy for wasm32: the engine's wasm32 modules (`arch/wasm32.rs`, `stack_wasm32.rs`, ...)
//!   and the guest are compiled for that target nowhere else with warnings denied.
//! - The conformance harness (`tests/`): every scenario native vs both wasm guests under
//!   wasmtime, the runtime module's own tests, and a smoke run of the switch benchmark. The
//!   guests (stable `panic=abort`; nightly `-Zbuild-std` `panic=unwind`) are built by the
//!   tests themselves, each in a target directory of its own (`target/wasm-guest*`). `test`
//!   already runs these tests as part of the workspace; this step runs them again (seconds,
//!   everything is built) so that `--only wasm` checks the port on its own.

use crate::{Result, cmd};

pub fn run() -> Result {
    cmd::run(&mut cmd::cargo([
        "clippy",
        "-p",
        "greenlet",
        "-p",
        "greenlet-guest",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    cmd::run(&mut cmd::cargo([
        "test",
        "-p",
        "greenlet-conformance",
        "--all-targets",
    ]))
}
