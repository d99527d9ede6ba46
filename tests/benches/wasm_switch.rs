//! Nanoseconds per greenlet switch under wasmtime, for both wasm guests, next to the same
//! ping-pong run natively in this process (the engine's own criterion bench,
//! `cargo bench -p greenlet --bench switch`, is the reference for native figures).
//!
//! `cargo bench -p greenlet-conformance --bench wasm_switch` builds wasmtime optimised (a long
//! first build); `--profile dev` reuses the test build of wasmtime instead: the switch itself
//! is Cranelift-generated code either way, only the host's side around it changes. The guests
//! are always release builds.
//!
//! Each sample times (in thread CPU time) `ROUNDS` round trips minus an empty run; the table
//! shows the minimum and the median of `SAMPLES`.

use greenlet_conformance::bench::pingpong;
use greenlet_conformance::host::{GuestKind, SwitchNs, measure, switch_ns};

const ROUNDS: u32 = 1_000_000;
const SAMPLES: usize = 21;

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs the target without it, as a
    // smoke test: keep that one short.
    let full = std::env::args().any(|a| a == "--bench");
    let (rounds, samples) = if full { (ROUNDS, SAMPLES) } else { (1000, 1) };
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "optimised"
    };
    println!("ns per switch, {rounds} round trips x {samples} samples ({profile} host build):");
    println!("  {:<22} {:>7} {:>7}", "", "min", "median");
    let row = |what: &str, r: SwitchNs| println!("  {what:<22} {:7.2} {:7.2}", r.min, r.median);
    let native = measure(rounds, samples, |n| Ok(pingpong(n))).expect("native ping-pong");
    // Natively the engine itself is compiled with the host profile: only an optimised build
    // says anything about it.
    row(
        if cfg!(debug_assertions) {
            "native (unoptimised)"
        } else {
            "native (this process)"
        },
        native,
    );
    for kind in [GuestKind::Abort, GuestKind::Unwind] {
        match switch_ns(kind, rounds, samples) {
            Ok(r) => row(&format!("wasm, {kind:?} guest"), r),
            Err(e) => {
                eprintln!("wasm, {kind:?} guest: {e:?}");
                std::process::exit(1);
            }
        }
    }
}
