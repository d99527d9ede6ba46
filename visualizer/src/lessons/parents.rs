//! Return values climb the parent chain: when a greenlet's body returns, its result is switched
//! to its parent; if the parent is dead, to the parent's parent, and so on. Switching into a
//! dead greenlet works the same way.

use greenlet::{Greenlet, root, step, trace_println};

pub fn run() {
    // collector: a long-lived greenlet that reports whatever reaches it back to main.
    let collector = Greenlet::builder()
        .name("collector")
        .spawn(|first| {
            let mut value: i32 = first.take();
            loop {
                trace_println!("collector received {value}");
                step!("collector reports {value} to main and waits");
                value = root().switch(value).take();
            }
        })
        .expect("spawn collector");

    // middle's parent is collector; leaf's parent is middle: main <- collector <- middle <- leaf.
    let middle = Greenlet::builder()
        .name("middle")
        .parent(&collector)
        .spawn(|first| {
            let n: i32 = first.take();
            step!(
                "middle starts with leaf's result {n}, and returns {}",
                n + 1
            );
            n + 1
        })
        .expect("spawn middle");
    let leaf = Greenlet::builder()
        .name("leaf")
        .parent(&middle)
        .spawn(|_| {
            step!("leaf returns 40: the value goes to its parent, middle");
            40
        })
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

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("parents.rs"));
}
