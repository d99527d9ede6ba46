//! Ping-pong: two greenlets switch straight to each other, with no scheduler in between.
//! Greenlet bodies here are functions of their own (`#[inline(never)]`), so the stack view can
//! name them even in an optimised build.

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::{Greenlet, Value, step, trace_println};

/// Where a player finds the other: each needs a handle to the other, which exists only once
/// both are created.
type Slot = Rc<RefCell<Option<Greenlet>>>;

pub fn run() {
    let ping_slot: Slot = Rc::default();
    let pong_slot: Slot = Rc::default();

    let other = pong_slot.clone();
    let ping = Greenlet::builder()
        .name("ping")
        .spawn(move |first| ping(first, &other))
        .expect("spawn ping");
    let other = ping_slot.clone();
    let pong = Greenlet::builder()
        .name("pong")
        .spawn(move |first| pong(first, &other))
        .expect("spawn pong");
    *ping_slot.borrow_mut() = Some(ping.clone());
    *pong_slot.borrow_mut() = Some(pong.clone());

    step!("main serves: it switches to ping with 0");
    let hits: u32 = ping.switch(0u32).take();
    step!("main gets ping's result: {hits}");
    trace_println!("done after {hits} hits");

    step!("main drops the last handles: pong, still suspended, is killed");
    ping_slot.borrow_mut().take();
    pong_slot.borrow_mut().take();
    drop(pong);
}

/// ping's body: hits the ball until the count reaches 4, then returns it.
#[inline(never)]
fn ping(first: Value, pong: &Slot) -> u32 {
    let mut n: u32 = first.take();
    while n < 4 {
        trace_println!("ping {n}");
        step!("ping hits the ball to pong with {}", n + 1);
        let pong = pong.borrow().clone().expect("pong exists");
        n = pong.switch(n + 1).take();
    }
    step!("ping wins: returning ends the game and wakes ping's parent, main");
    n
}

/// pong's body: hits the ball back, forever.
#[inline(never)]
fn pong(first: Value, ping: &Slot) {
    let mut n: u32 = first.take();
    loop {
        trace_println!("pong {n}");
        step!("pong hits the ball back to ping with {}", n + 1);
        let ping = ping.borrow().clone().expect("ping exists");
        n = ping.switch(n + 1).take();
    }
}

/// Puts this file in the trace, so the source pane shows exactly this code.
pub fn register_source() {
    greenlet::trace::add_source(file!(), include_str!("pingpong.rs"));
}
