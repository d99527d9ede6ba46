//! Deep recursion fills a greenlet's stack: each call holds a 1 KiB buffer. Watch "in use" grow
//! and the high-water mark stay behind when the calls return. The stack is small (256 KiB) and
//! the recursion stops well before its end: below the stack is the guard page, and touching it
//! aborts the process with a stack overflow message. Greenlet bodies here are functions of their
//! own (`#[inline(never)]`), so the stack view can name them even in an optimised build.

use greenlet::{Greenlet, Value, root, step, trace_println};

pub fn run() {
    let deep = Greenlet::builder()
        .name("deep")
        .stack_size(256 * 1024)
        .spawn(dive)
        .expect("spawn deep");

    step!("main asks deep to recurse 48 levels");
    let mut report = deep.switch(48u32);
    while let Some(level) = report.downcast_ref::<u32>() {
        trace_println!("deep reported level {level}");
        step!("main resumes deep");
        report = deep.switch(());
    }
    trace_println!("deep: {}", report.take::<String>());
    step!("main resumes deep one last time: it returns");
    let result: &str = deep.switch(()).take();
    trace_println!("deep finished: {result}");
}

/// deep's body: recurse, come back up, report.
#[inline(never)]
fn dive(first: Value) -> &'static str {
    let depth: u32 = first.take();
    step!("deep starts recursing {depth} levels");
    let reached = descend(1, depth);
    step!("the calls have returned: little stack in use, the high-water mark stays");
    root().switch(format!("back at the top after {reached} levels"));
    "done"
}

/// Recurses down to `depth`, reporting to main every 16 levels; returns the deepest level.
#[inline(never)]
fn descend(level: u32, depth: u32) -> u32 {
    // 1 KiB of locals per call, kept alive across the call so every frame really holds it.
    let buffer = [level as u8; 1024];
    std::hint::black_box(&buffer);
    if level.is_multiple_of(16) {
        step!("level {level}: the stack is deeper; report to main");
        root().switch(level);
    }
    let reached = if level == depth {
        level
    } else {
        descend(level + 1, depth)
    };
    std::hint::black_box(&buffer);
    reached
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("recursion.rs"));
}
