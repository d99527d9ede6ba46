//! Two greenlets hand a counter back and forth, switching directly to each other
//! (symmetric coroutines: no scheduler in between), then the last one returns to the root.
//!
//! ```text
//! ping 0
//! pong 1
//! ...
//! done after 6 hits
//! ```

use std::cell::RefCell;
use std::rc::Rc;

use greenlet::Greenlet;

fn main() {
    // Each player needs a handle to the other, which exists only after both are spawned.
    let pong_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let ping_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();

    let other = pong_slot.clone();
    let ping = Greenlet::builder()
        .name("ping")
        .spawn(move |v| {
            let mut n: u32 = v.take();
            while n < 5 {
                println!("ping {n}");
                let pong = other.borrow().clone().expect("pong exists");
                n = pong.switch(n + 1).take();
            }
            n // returning ends the game: the value goes to ping's parent, the root
        })
        .expect("spawn ping");

    let other = ping_slot.clone();
    let pong = Greenlet::builder()
        .name("pong")
        .spawn(move |v| {
            let mut n: u32 = v.take();
            loop {
                println!("pong {n}");
                let ping = other.borrow().clone().expect("ping exists");
                n = ping.switch(n + 1).take();
            }
        })
        .expect("spawn pong");

    *pong_slot.borrow_mut() = Some(pong.clone());
    *ping_slot.borrow_mut() = Some(ping.clone());

    let hits: u32 = ping.switch(0u32).take();
    println!("done after {hits} hits");
    // Break the cycle of handles so both greenlets are freed (pong, still suspended, is
    // killed: its stack unwinds).
    ping_slot.borrow_mut().take();
    pong_slot.borrow_mut().take();
}
