//! Which frames of a recorded stack to show, and how to name them.
//!
//! The recorder drops engine and runtime frames by their full path (`greenlet::…`, `std::…`).
//! With line-tables-only debug info (this workspace's dev profile) the symbolizer reports
//! inlined functions by their bare name (`observe_running`, `{closure#0}`), so those frames
//! slip through. The viewer filters again by the frame's source file: frames from the Rust
//! standard library, from crates.io dependencies, or from the engine's own sources are
//! plumbing.

use greenlet::trace::Frame;

/// Path fragments of source files that are never the program's own code.
const PLUMBING_FILES: [&str; 5] = [
    "/rustc/",
    "/.cargo/registry/",
    "/.cargo/git/",
    "/library/std/",
    "/library/core/",
];

/// Source directories of the engine (the `greenlet` crate), as seen from a workspace checkout.
const ENGINE_SOURCES: [&str; 1] = ["engine/src/"];

/// Function names that are runtime or engine plumbing even without a file (the last is the
/// visualizer's own lesson runner).
const PLUMBING_NAMES: [&str; 11] = [
    "greenlet::",
    "backtrace::",
    "std::",
    "core::",
    "alloc::",
    "<core::",
    "<alloc::",
    "<std::",
    "__rust",
    "<unknown>",
    "greenlet_visualizer::lessons::record",
];

/// Whether a frame is the program's own code rather than engine or runtime plumbing.
pub fn is_program_frame(frame: &Frame) -> bool {
    if PLUMBING_NAMES.iter().any(|p| frame.function.starts_with(p)) {
        return false;
    }
    let bare = matches!(
        frame.function.as_str(),
        "main" | "start_thread" | "clone3" | "clone" | "_start" | "__libc_start_main"
    );
    if bare {
        return false;
    }
    match &frame.file {
        Some(file) => {
            !PLUMBING_FILES.iter().any(|p| file.contains(p))
                && !ENGINE_SOURCES.iter().any(|p| file.contains(p))
        }
        None => true,
    }
}

/// The program's frames of a stack, innermost first.
pub fn program_frames(frames: &[Frame]) -> Vec<&Frame> {
    frames.iter().filter(|f| is_program_frame(f)).collect()
}

/// A short name for a frame: the function without its module path, and where it is when the
/// name alone says little (`{closure#0}` becomes `{closure#0} pingpong.rs:19`).
pub fn display_name(frame: &Frame) -> String {
    let function = short_function(&frame.function);
    let file = frame
        .file
        .as_deref()
        .and_then(|f| f.rsplit(['/', '\\']).next());
    match (file, frame.line) {
        (Some(file), Some(line)) if function.starts_with('{') => {
            format!("{function} {file}:{line}")
        }
        _ => function.to_owned(),
    }
}

/// A function name without its module path, keeping closure markers: `a::b::run::{{closure}}`
/// becomes `run::{{closure}}`; generic arguments are left out.
pub fn short_function(name: &str) -> &str {
    // Generic arguments can hold paths of their own: cut them first.
    let name = match name.find('<') {
        Some(0) | None => name,
        Some(i) => &name[..i],
    };
    let mut trimmed = name;
    while let Some(rest) = trimmed
        .strip_suffix("::{{closure}}")
        .or_else(|| trimmed.strip_suffix("::{closure#0}"))
    {
        trimmed = rest;
    }
    let cut = trimmed.rfind("::").map_or(0, |i| i + 2);
    &name[cut..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: &str, file: Option<&str>, line: Option<u32>) -> Frame {
        Frame {
            function: function.to_owned(),
            file: file.map(str::to_owned),
            line,
        }
    }

    #[test]
    fn plumbing_is_recognised_by_name_or_by_file() {
        let keep = [
            frame("my_app::worker", Some("/home/me/app/src/main.rs"), Some(3)),
            frame(
                "{closure#0}",
                Some("/w/visualizer/src/lessons/pingpong.rs"),
                Some(19),
            ),
            frame("descend", None, None),
        ];
        let drop = [
            frame(
                "observe_running",
                Some("/w/engine/src/trace/recorder.rs"),
                Some(165),
            ),
            frame(
                "trace",
                Some("/root/.cargo/registry/src/x/backtrace-0.3/src/lib.rs"),
                Some(1),
            ),
            frame(
                "catch_unwind<…>",
                Some("/rustc/abc/library/std/src/panic.rs"),
                Some(359),
            ),
            frame("greenlet::greenlet::switch_to", None, None),
            frame("<unknown>", None, None),
            frame("main", None, None),
        ];
        assert!(keep.iter().all(is_program_frame));
        assert!(!drop.iter().any(is_program_frame));
    }

    #[test]
    fn names_are_short_and_closures_say_where_they_are() {
        assert_eq!(short_function("a::b::run"), "run");
        assert_eq!(short_function("a::b::run::{{closure}}"), "run::{{closure}}");
        assert_eq!(
            short_function("try_with<core::cell::RefCell<T>>"),
            "try_with"
        );
        assert_eq!(short_function("main"), "main");
        let f = frame("{closure#0}", Some("/w/src/lessons/pingpong.rs"), Some(19));
        assert_eq!(display_name(&f), "{closure#0} pingpong.rs:19");
        let f = frame(
            "app::lessons::recursion::descend",
            Some("/w/recursion.rs"),
            Some(9),
        );
        assert_eq!(display_name(&f), "descend");
    }
}
