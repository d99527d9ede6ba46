//! The seed example: one greenlet that prints, hands control back, and is resumed to finish.
//! Greenlet bodies here are functions of their own (`#[inline(never)]`), so the stack view can
//! name them even in an optimised build.

use greenlet::{Greenlet, root, step, trace_println};

pub fn run() {
    step!("create greenlet 1: nothing runs yet");
    let g = Greenlet::builder()
        .name("greenlet 1")
        .spawn(|_| func1())
        .expect("spawn greenlet 1");

    trace_println!("entering greenlet 1");
    step!("main switches to greenlet 1");
    g.switch(());

    step!("main is running again");
    trace_println!("re-entering greenlet 1");
    step!("main switches to greenlet 1 a second time");
    g.switch(());

    step!("greenlet 1 is dead; main carries on");
    trace_println!("exiting program");
}

/// greenlet 1's body.
#[inline(never)]
fn func1() {
    step!("greenlet 1 runs its body for the first time");
    trace_println!("in func1 (greenlet 1)");
    step!("greenlet 1 hands control back to main");
    root().switch(());
    step!("greenlet 1 resumes right after its switch");
    trace_println!("exiting func1 (greenlet 1)");
    step!("greenlet 1 returns: its result goes to its parent, main");
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("seed.rs"));
}
