//! The figures criterion cannot time, greenlet beside corosensei: the chain, the density
//! limit, and a ping-pong loop for counting instructions under callgrind.
//!
//! `cargo bench -p greenlet --bench figures` runs every measurement in a child process of its
//! own (so that peak RSS, `VmHWM`, and the memory-mapping count belong to one measurement,
//! and a library that runs out of mappings cannot disturb the next one), then prints a table
//! and `@@key=value` lines that `cargo xtask bench` reads. The child modes can be run by hand:
//!
//! - `figures chain ours|corosensei N`: N greenlets, each created by the previous one, pass
//!   `value + 1` on; the last returns it, and every body returns what its child returned.
//!   Timed five times (the median is reported); peak RSS is the child's `VmHWM`.
//! - `figures density ours|corosensei MAX`: suspended greenlets, one after the other, until
//!   MAX are alive or spawning fails; RSS per greenlet counts its stack page(s), its control
//!   block and its handle in a `Vec`.
//! - `figures pingpong ours|corosensei N`: N root ↔ child round trips, then exit. Run under
//!   `valgrind --tool=callgrind` for two values of N: the difference of the instruction counts
//!   over `2 × ΔN` is the cost of one switch, setup and teardown cancelling out.
//!
//! Both libraries use 16 KiB stacks here (`MIN_STACK_SIZE`), each with a guard page:
//! corosensei's `DefaultStack` maps every stack and guards it with `mprotect`; greenlet carves
//! its stacks from shared mappings (see `engine/src/stack.rs`).

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use corosensei::stack::DefaultStack;
use corosensei::{Coroutine, CoroutineResult, Yielder};
use greenlet::{Greenlet, MIN_STACK_SIZE, Value, root};

const STACK: usize = MIN_STACK_SIZE;
/// Python greenlet's chain benchmark length.
const CHAIN_N: usize = 100_000;
/// A chain short enough for corosensei's `mprotect`-guarded stacks (about 32,700 at most).
const CHAIN_SHORT_N: usize = 30_000;
/// The density goal of the project.
const DENSITY_MAX: usize = 1_000_000;
/// A density run both libraries finish: the cost of a spawn on a never-used stack, compared
/// at the same count.
const DENSITY_SHORT_N: usize = 30_000;
const CHAIN_RUNS: usize = 5;

fn main() {
    // `cargo bench` passes `--bench`; options are not ours.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => parent(),
        ["chain", lib, n] => chain(lib, parse(n)),
        ["density", lib, n] => density(lib, parse(n)),
        ["pingpong", lib, n] => pingpong(lib, parse(n)),
        ["spawn", lib, n] => spawn(lib, parse(n)),
        _ => {
            eprintln!(
                "usage: figures [chain|density|pingpong|spawn ours|corosensei N] (no arguments: all)"
            );
            std::process::exit(2);
        }
    }
}

fn parse(n: &str) -> usize {
    n.replace('_', "").parse().expect("a count")
}

/// Runs every measurement in a child and prints the results.
fn parent() {
    let mut lines = Vec::new();
    for (mode, n) in [
        ("chain", CHAIN_N),
        ("chain", CHAIN_SHORT_N),
        ("density", DENSITY_MAX),
        ("density", DENSITY_SHORT_N),
    ] {
        for lib in ["ours", "corosensei"] {
            let out = Command::new(std::env::current_exe().expect("own path"))
                .args([mode, lib, &n.to_string()])
                .output()
                .expect("run a measurement child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                eprintln!(
                    "{mode} {lib} {n} failed ({}):\n{stdout}\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
                lines.push(format!("@@{mode}.{n}.{lib}.error=child {}", out.status));
                continue;
            }
            lines.extend(
                stdout
                    .lines()
                    .filter(|l| l.starts_with("@@"))
                    .map(str::to_owned),
            );
        }
    }
    for l in &lines {
        println!("{l}");
    }
}

/// Prints one result of this child as `@@mode.n.lib.key=value`.
fn emit(mode: &str, lib: &str, n: usize, key: &str, value: impl std::fmt::Display) {
    println!("@@{mode}.{n}.{lib}.{key}={value}");
}

/// A line of `/proc/self/status`, in KiB.
fn status_kib(field: &str) -> usize {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"))
}

/// Lines of `/proc/self/maps` (memory mappings), read into `buf`, which is allocated
/// beforehand: once the process is out of mappings, a large allocation (itself a mapping)
/// would fail.
fn mappings(buf: &mut String) -> usize {
    use std::io::Read as _;
    buf.clear();
    std::fs::File::open("/proc/self/maps")
        .and_then(|mut f| f.read_to_string(buf))
        .map(|_| buf.lines().count())
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

// --- chain ---------------------------------------------------------------------------------

/// Greenlet `v` of the chain: spawns greenlet `v + 1` and switches `v + 1` to it; returns
/// what it returns. The last one returns its value. All `n` are alive at the deepest point.
fn link_ours(v: usize, n: usize) -> Result<usize, String> {
    if v >= n {
        return Ok(v);
    }
    let next = Greenlet::builder()
        .stack_size(STACK)
        .spawn(move |x: Value| link_ours(x.take::<usize>(), n))
        .map_err(|e| format!("greenlet {}: {e}", v + 1))?;
    next.switch(v + 1).take::<Result<usize, String>>()
}

/// The same chain with corosensei: each coroutine creates and resumes the next one.
fn link_corosensei(v: usize, n: usize) -> Result<usize, String> {
    if v >= n {
        return Ok(v);
    }
    let stack = DefaultStack::new(STACK).map_err(|e| format!("coroutine {}: {e}", v + 1))?;
    let mut next = Coroutine::with_stack(stack, move |_: &Yielder<usize, ()>, x: usize| {
        link_corosensei(x, n)
    });
    match next.resume(v + 1) {
        CoroutineResult::Return(r) => r,
        CoroutineResult::Yield(()) => unreachable!("the chain never yields"),
    }
}

fn chain(lib: &str, n: usize) {
    let mut times = Vec::new();
    for _ in 0..CHAIN_RUNS {
        let start = Instant::now();
        let r = match lib {
            "ours" => link_ours(0, n),
            "corosensei" => link_corosensei(0, n),
            _ => panic!("unknown library {lib}"),
        };
        let t = start.elapsed();
        match r {
            Ok(v) => {
                assert_eq!(v, n, "the chain passes value + 1 along");
                times.push(t);
            }
            Err(e) => {
                emit("chain", lib, n, "error", e);
                return;
            }
        }
    }
    let t = median(times);
    emit(
        "chain",
        lib,
        n,
        "ms",
        format!("{:.2}", t.as_secs_f64() * 1e3),
    );
    emit(
        "chain",
        lib,
        n,
        "peak_mib",
        format!("{:.1}", status_kib("VmHWM") as f64 / 1024.0),
    );
}

// --- density -------------------------------------------------------------------------------

fn density(lib: &str, max: usize) {
    match lib {
        "ours" => density_of(lib, max, || {
            let g = Greenlet::builder()
                .stack_size(STACK)
                .spawn(|_: Value| {
                    root().switch(());
                })
                .map_err(|e| e.to_string())?;
            g.switch(());
            Ok(g)
        }),
        "corosensei" => density_of(lib, max, || {
            let stack = DefaultStack::new(STACK).map_err(|e| e.to_string())?;
            let mut co = Coroutine::with_stack(stack, |y: &Yielder<(), ()>, ()| {
                y.suspend(());
            });
            co.resume(());
            Ok(co)
        }),
        _ => panic!("unknown library {lib}"),
    }
}

/// Spawns with `spawn` until `max` are alive or it fails; reports how many, the RSS each
/// added, and the memory mappings. Exits without dropping them (killing a million suspended
/// greenlets unwinds a million stacks, which is not what is measured).
fn density_of<T>(lib: &str, max: usize, mut spawn: impl FnMut() -> Result<T, String>) {
    let mut alive: Vec<T> = Vec::with_capacity(max);
    let mut buf = String::with_capacity(32 << 20);
    let maps_before = mappings(&mut buf);
    let rss_before = status_kib("VmRSS");
    let start = Instant::now();
    let mut error = None;
    while alive.len() < max {
        match spawn() {
            Ok(g) => alive.push(g),
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let elapsed = start.elapsed();
    let n = alive.len();
    let rss = status_kib("VmRSS").saturating_sub(rss_before);
    emit("density", lib, max, "n", n);
    emit(
        "density",
        lib,
        max,
        "kib_each",
        format!("{:.2}", rss as f64 / n.max(1) as f64),
    );
    emit(
        "density",
        lib,
        max,
        "maps",
        mappings(&mut buf).saturating_sub(maps_before),
    );
    emit(
        "density",
        lib,
        max,
        "us_each",
        format!("{:.2}", elapsed.as_secs_f64() * 1e6 / n.max(1) as f64),
    );
    if let Some(e) = error {
        emit("density", lib, max, "error", e);
    }
    use std::io::Write as _;
    std::io::stdout().flush().unwrap();
    black_box(&alive);
    std::process::exit(0);
}

// --- ping-pong for callgrind ---------------------------------------------------------------

fn pingpong(lib: &str, n: usize) {
    match lib {
        "ours" => {
            let r = root();
            let g = Greenlet::new(move |_| {
                loop {
                    r.switch(());
                }
            });
            for _ in 0..n {
                black_box(g.switch(()));
            }
        }
        "corosensei" => {
            let mut co = Coroutine::new(|y: &Yielder<(), ()>, ()| {
                loop {
                    y.suspend(());
                }
            });
            for _ in 0..n {
                black_box(co.resume(()));
            }
        }
        _ => panic!("unknown library {lib}"),
    }
    // Teardown is the same for every n; leaving it out keeps the counts small.
    std::process::exit(0);
}

/// N spawns with a pooled (or reused) stack, as `spawn/pooled` and `spawn/reused_stack` of
/// the criterion bench.
fn spawn(lib: &str, n: usize) {
    match lib {
        "ours" => {
            for _ in 0..n {
                let g = Greenlet::new(|v| v);
                black_box(g.switch(1usize));
            }
        }
        "corosensei" => {
            let mut stack = Some(DefaultStack::new(1 << 20).expect("a stack"));
            for _ in 0..n {
                let mut co = Coroutine::with_stack(
                    stack.take().expect("the stack"),
                    |_: &Yielder<usize, ()>, v: usize| v,
                );
                black_box(co.resume(1));
                stack = Some(co.into_stack());
            }
        }
        _ => panic!("unknown library {lib}"),
    }
    std::process::exit(0);
}
