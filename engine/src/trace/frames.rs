//! Capturing and symbolizing the frames of a greenlet's stack.
//!
//! Capture walks the running stack with the platform unwinder (the entry trampoline's CFI
//! ends the walk at the bottom of a greenlet stack) and keeps raw return addresses; symbolizing
//! turns them into function names and file:line where debug info allows, and drops the frames
//! of the engine itself and of the Rust runtime, which say nothing about the program.

use std::collections::HashMap;

use super::format::Frame;

/// Return addresses of the running stack, innermost first.
/// Stops at the greenlet's entry trampoline: beyond it, the unwinder follows the stack link
/// into whichever context last switched in, which is not this greenlet's stack.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn capture() -> Vec<usize> {
    let trampoline = crate::arch::trampoline_address();
    let mut ips = Vec::with_capacity(32);
    backtrace::trace(|frame| {
        if frame.symbol_address() as usize == trampoline {
            return false;
        }
        ips.push(frame.ip() as usize);
        ips.len() < 256
    });
    ips
}

/// Nothing on wasm32: a wasm program cannot walk its own call stack (the frames live in the
/// engine that runs it), so backtraces and traces of wasm greenlets carry no frames.
#[cfg(target_arch = "wasm32")]
pub(crate) fn capture() -> Vec<usize> {
    Vec::new()
}

/// Symbolizes each stack (sharing the work for addresses that appear in several).
pub(crate) fn symbolize(stacks: &[Vec<usize>]) -> Vec<Vec<Frame>> {
    let mut cache: HashMap<usize, Vec<Frame>> = HashMap::new();
    stacks
        .iter()
        .map(|ips| {
            let mut frames = Vec::new();
            for &ip in ips {
                let resolved = cache.entry(ip).or_insert_with(|| resolve(ip));
                frames.extend(resolved.iter().cloned());
            }
            keep_program_frames(frames)
        })
        .collect()
}

/// The frames (several when functions were inlined) at one return address.
fn resolve(ip: usize) -> Vec<Frame> {
    #[cfg_attr(target_arch = "wasm32", allow(unused_mut))]
    let mut out = Vec::new();
    #[cfg(target_arch = "wasm32")]
    let _ = ip;
    // A return address points after the call; one byte back is inside it, which gives the
    // call's line rather than the next statement's. (wasm32 captures no addresses.)
    #[cfg(not(target_arch = "wasm32"))]
    backtrace::resolve(ip.saturating_sub(1) as *mut std::ffi::c_void, |sym| {
        let function = sym
            .name()
            .map(|n| strip_hash(&format!("{n:#}")))
            .unwrap_or_else(|| "<unknown>".to_owned());
        out.push(Frame {
            function,
            file: sym.filename().map(|p| p.display().to_string()),
            line: sym.lineno(),
        });
    });
    if out.is_empty() {
        out.push(Frame {
            function: "<unknown>".to_owned(),
            file: None,
            line: None,
        });
    }
    out
}

/// `foo::bar::h0123456789abcdef` → `foo::bar` (the `{:#}` form already omits it, but keep
/// symbols from other manglings tidy too).
#[cfg_attr(target_arch = "wasm32", allow(dead_code))] // only for symbols, which wasm32 lacks
fn strip_hash(name: &str) -> String {
    match name.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            head.to_owned()
        }
        _ => name.to_owned(),
    }
}

/// Engine internals and runtime plumbing: never what a reader of a trace wants to see. Judged
/// by the source file where there is one (inlined frames may come without a module path),
/// else by the function's path.
fn is_plumbing_frame(f: &Frame) -> bool {
    if let Some(file) = &f.file {
        let engine_src = concat!(env!("CARGO_MANIFEST_DIR"), "/src/");
        let library = [
            "/rustc/",
            "/library/std/",
            "/library/core/",
            "/library/alloc/",
        ];
        if file.starts_with(engine_src)
            || file.starts_with("engine/src/")
            || library.iter().any(|l| file.contains(l))
            || file.contains("/backtrace-0.")
        {
            return true;
        }
    }
    is_plumbing(&f.function)
}

/// Engine internals and runtime plumbing, by function path.
fn is_plumbing(function: &str) -> bool {
    const PREFIXES: [&str; 18] = [
        "greenlet::greenlet::",
        "greenlet::switch::",
        "greenlet::inner::",
        "greenlet::stack::",
        "greenlet::asan::",
        "greenlet::trace::",
        "greenlet::thread::",
        "greenlet::value::",
        "greenlet::arch::",
        "backtrace::",
        "std::",
        "core::",
        "alloc::",
        "__rust",
        "_start",
        "__libc_start",
        "<alloc::",
        "<core::",
    ];
    PREFIXES.iter().any(|p| function.starts_with(p)) || function == "main"
}

/// Drops engine and runtime frames, keeping the program's own (innermost first).
pub(crate) fn keep_program_frames(frames: Vec<Frame>) -> Vec<Frame> {
    frames
        .into_iter()
        .filter(|f| !is_plumbing_frame(f))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_stripped() {
        assert_eq!(strip_hash("a::b::h0123456789abcdef"), "a::b");
        assert_eq!(strip_hash("a::b::hello"), "a::b::hello");
    }

    #[test]
    fn plumbing_is_dropped() {
        let f = |n: &str| Frame {
            function: n.into(),
            file: None,
            line: None,
        };
        let kept = keep_program_frames(vec![
            f("greenlet::greenlet::switch_to"),
            f("my_app::worker"),
            f("std::panicking::try"),
            f("my_app::main"),
            f("main"),
        ]);
        let names: Vec<_> = kept.iter().map(|f| f.function.as_str()).collect();
        assert_eq!(names, ["my_app::worker", "my_app::main"]);
    }
}
