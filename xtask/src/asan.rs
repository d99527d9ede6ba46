//! `cargo xtask ci` step `asan`: the engine's semantics, model and drop tests built with
//! nightly's AddressSanitizer and the engine's fiber annotations (`--cfg greenlet_asan`, see
//! `engine/src/asan.rs`), which must report no error and no leak.
//!
//! Nightly cannot be installed by `cargo xtask setup` (toolchains are not fetched from package
//! registries), so the step is skipped, saying so, on a machine without one.
//!
//! - The build goes to `target/asan`, with `--target` so that `RUSTFLAGS` reach neither build
//!   scripts nor proc macros, and so that the other steps' artifacts are not rebuilt.
//! - `detect_stack_use_after_return=0`: with it on, locals live on ASan's heap "fake stacks",
//!   which semantics case 17 (an injected function runs on the target's stack, checked by
//!   comparing addresses of locals) cannot tell apart, and a dead greenlet's fake stack would be
//!   leaked (see `engine/src/asan.rs`). Stack bounds, poisoning and everything else are checked.
//! - `greenlets_in_a_thread_local_older_than_the_runtime_drop_each_value_once` is skipped:
//!   LeakSanitizer reports the engine's known leak of two root greenlets there, as valgrind
//!   does (see `valgrind.rs`).

use std::process::Command;

use crate::{Result, cmd};

/// The host triple the step builds for (`--target` keeps RUSTFLAGS off build scripts).
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// Model-test cases under ASan (about 10 ms each there).
const MODEL_CASES: &str = "800";

pub fn run() -> Result {
    if !cfg!(all(target_arch = "x86_64", target_os = "linux")) {
        println!("asan: skipped (the step builds for {TARGET})");
        return Ok(());
    }
    let nightly = cmd::probe(Command::new("rustup").args(["run", "nightly", "rustc", "--version"]));
    if !nightly.is_ok_and(|o| o.status.success()) {
        println!("asan: skipped: no nightly toolchain on this machine (`rustup +nightly` fails)");
        return Ok(());
    }
    let mut test = Command::new("rustup");
    test.args([
        "run", "nightly", "cargo", "test", "-p", "greenlet", "--target", TARGET,
    ])
    .args(["--test", "semantics", "--test", "model", "--test", "drops"])
    .args([
        "--",
        "--skip",
        "greenlets_in_a_thread_local_older_than_the_runtime_drop_each_value_once",
    ])
    .current_dir(cmd::workspace_root())
    .env("RUSTFLAGS", "-Zsanitizer=address --cfg greenlet_asan")
    .env(
        "CARGO_TARGET_DIR",
        cmd::workspace_root().join("target/asan"),
    )
    .env("ASAN_OPTIONS", "detect_stack_use_after_return=0")
    .env("GREENLET_MODEL_CASES", MODEL_CASES)
    // Set by cargo for `cargo xtask`; the nightly cargo must use its own toolchain.
    .env_remove("CARGO")
    .env_remove("RUSTC")
    .env_remove("RUSTDOC");
    cmd::run(&mut test)
}
