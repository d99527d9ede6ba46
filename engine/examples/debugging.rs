//! What debuggers, profilers and backtraces see of greenlets: the root switches into an outer
//! greenlet, which switches into an inner one, which then does what the first argument asks:
//!
//! - `backtrace`: prints `std::backtrace::Backtrace::force_capture()`;
//! - `panic`: panics (run with `RUST_BACKTRACE=1` to see the backtrace cross the stacks);
//! - `gdb`: raises SIGTRAP in `breakpoint_here`, for `gdb -batch -ex run -ex bt --args ...`;
//! - `frames`: walks the frame-pointer chain by hand and prints each return address's function
//!   (build with `RUSTFLAGS="-C force-frame-pointers=yes"` for every frame to have a record).
//!
//! The second argument, `above` or `below`, places the inner greenlet's stack above or below
//! the outer's address (unwinders must accept a caller frame on either side).

use std::hint::black_box;

use greenlet::{Greenlet, root};

/// Stops a debugger here: SIGTRAP is what a breakpoint raises (without a debugger it would end
/// the process, so only the `gdb` mode calls this).
#[inline(never)]
fn breakpoint_here() {
    // SAFETY: raising a signal has no memory-safety preconditions.
    unsafe { libc::raise(libc::SIGTRAP) };
    black_box(());
}

/// Where this function's frame is: an address on the running stack.
#[inline(never)]
fn stack_address() -> usize {
    let x = 0u8;
    black_box(&x) as *const u8 as usize
}

#[inline(never)]
fn inner_frame(mode: &str) {
    match mode {
        "backtrace" => println!("{}", std::backtrace::Backtrace::force_capture()),
        "panic" => panic!("boom in the inner greenlet"),
        "gdb" => breakpoint_here(),
        "frames" => walk_frame_pointers(),
        other => panic!("unknown mode {other:?}"),
    }
    black_box(());
}

/// Follows the frame-pointer chain from here and prints the function of each return address.
#[inline(never)]
fn walk_frame_pointers() {
    #[cfg(target_arch = "x86_64")]
    let mut fp: usize = {
        let fp;
        // SAFETY: reads rbp, nothing else.
        unsafe { std::arch::asm!("mov {}, rbp", out(reg) fp) };
        fp
    };
    #[cfg(target_arch = "aarch64")]
    let mut fp: usize = {
        let fp;
        // SAFETY: reads x29, nothing else.
        unsafe { std::arch::asm!("mov {}, x29", out(reg) fp) };
        fp
    };
    for _ in 0..64 {
        if fp == 0 || !fp.is_multiple_of(8) {
            break;
        }
        // SAFETY: with frame pointers forced, every record on the chain is a valid
        // (next, return address) pair on a live stack, down to the frame with next = 0.
        let (next, ret) = unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        let mut name = String::from("?");
        backtrace::resolve((ret.saturating_sub(1)) as *mut std::ffi::c_void, |s| {
            if let Some(n) = s.name() {
                name = format!("{n:#}");
            }
        });
        println!("frame {ret:#x} {name}");
        fp = next;
    }
}

/// What a greenlet does once it knows where its stack is.
enum Role {
    Outer(Greenlet),
    Inner(String),
}

fn body(_: greenlet::Value) {
    // Report where this stack is, then wait for a role.
    match root().switch(stack_address()).take::<Role>() {
        Role::Outer(inner) => outer_frame(&inner),
        Role::Inner(mode) => inner_frame(&mode),
    }
}

#[inline(never)]
fn outer_frame(inner: &Greenlet) {
    inner.switch(Role::Inner(MODE.with(|m| m.borrow().clone())));
    black_box(());
}

thread_local! {
    static MODE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "backtrace".into());
    let placement = args.next().unwrap_or_else(|| "below".into());
    MODE.with(|m| *m.borrow_mut() = mode);

    let a = Greenlet::builder().name("a").spawn(body).unwrap();
    let b = Greenlet::builder().name("b").spawn(body).unwrap();
    let (a_at, b_at): (usize, usize) = (a.switch(()).take(), b.switch(()).take());
    let ((low, _), (high, _)) = if a_at < b_at {
        ((a, a_at), (b, b_at))
    } else {
        ((b, b_at), (a, a_at))
    };
    let (outer, inner) = if placement == "above" {
        (low, high)
    } else {
        (high, low)
    };
    println!(
        "inner stack ({}) is {placement} the outer stack ({})",
        inner.name().unwrap(),
        outer.name().unwrap()
    );
    outer.switch(Role::Outer(inner));
}
