//! Return values climb the parent chain: when a greenlet's body returns, its result is switched
//! to its parent; if the parent is dead, to the parent's parent, and so on. Switching into a
//! dead greenlet works the same way. Greenlet bodies here are functions of their own
//! (`#[inline(never)]`), so the stack view can name them even in an optimised build.

use greenlet::{Greenlet, Value, root, step, trace_println};

pub fn run() {
    // The chain: main <- collector <- middle <- leaf.
    let collector = Greenlet::builder()
        .name("collector")
        .spawn(collect)
        .expect("spawn collector");
    let middle = Greenlet::builder()
        .name("middle")
        .parent(&collector)
        .spawn(add_one)
        .expect("spawn middle");
    let leaf = Greenlet::builder()
        .name("leaf")
        .parent(&middle)
        .spawn(|_| forty())
        .expect("spawn leaf");

    step!("main switches to leaf");
    let got: i32 = leaf.switch(()).take();
    trace_println!("main got {got} (40 climbed leaf -> middle -> collector)");

    step!("leaf and middle are dead; switching to leaf climbs to collector");
    let got: i32 = leaf.switch(100).take();
    trace_println!("main got {got} back through a dead greenlet");

    step!("re-parent leaf under main: now a switch to dead leaf lands on main itself");
    leaf.set_parent(&root()).expect("no cycle");
    let got: i32 = leaf.switch(7).take();
    trace_println!("main got its own {got} back at once");

    step!("main drops everything: the suspended collector is killed");
    drop((leaf, middle, collector));
}

/// collector's body: a long-lived greenlet that reports whatever reaches it back to main.
#[inline(never)]
fn collect(first: Value) {
    let mut value: i32 = first.take();
    loop {
        trace_println!("collector received {value}");
        step!("collector reports {value} to main and waits");
        value = root().switch(value).take();
    }
}

/// middle's body: starts with leaf's result, and returns it plus one.
#[inline(never)]
fn add_one(first: Value) -> i32 {
    let n: i32 = first.take();
    step!(
        "middle starts with leaf's result {n}, and returns {}",
        n + 1
    );
    n + 1
}

/// leaf's body.
#[inline(never)]
fn forty() -> i32 {
    step!("leaf returns 40: the value goes to its parent, middle");
    40
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("parents.rs"));
}
