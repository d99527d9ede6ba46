//! Payloads of up to 16 bytes travel without allocating: a counting global allocator proves
//! that a ping-pong of such values makes no allocation once the greenlet is running, and that
//! a spawn-run-finish-drop of a greenlet whose closure captures up to 32 bytes makes none once
//! the thread's pools hold a stack and a control block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use greenlet::{Greenlet, root};

/// Counts allocations made by the thread that asks (tests run on several threads at once).
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// const-initialised thread-local without a destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded from the caller.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from the caller.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: forwarded from the caller.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Switches `rounds` round trips of `make(i)` to an echoing greenlet; returns the allocations
/// made meanwhile (after a warm-up round trip that starts the greenlet).
fn allocations_during<T: Copy + PartialEq + std::fmt::Debug + 'static>(
    rounds: u64,
    make: impl Fn(u64) -> T,
) -> u64 {
    let r = root();
    let echo = Greenlet::new(move |v| {
        let mut v: T = v.take();
        loop {
            v = r.switch(v).take();
        }
    });
    echo.switch(make(0)).take::<T>();
    let before = allocations();
    for i in 1..=rounds {
        let back: T = echo.switch(make(i)).take();
        assert_eq!(back, make(i));
    }
    allocations() - before
}

#[test]
fn sixteen_byte_payloads_do_not_allocate() {
    assert_eq!(allocations_during(1000, |i| i), 0, "u64");
    assert_eq!(allocations_during(1000, |i| [i, !i]), 0, "[u64; 2]");
    assert_eq!(
        allocations_during(1000, |i| (i as u32, i as u8)),
        0,
        "(u32, u8)"
    );
    assert_eq!(allocations_during(1000, |_| ()), 0, "()");
    assert_eq!(
        allocations_during(1000, |_| "static str"),
        0,
        "&'static str"
    );
}

#[test]
fn larger_payloads_allocate_once_per_switch() {
    // The control: the counter does see allocations (a 24-byte value is boxed).
    let n = allocations_during(100, |i| [i, i, i]);
    assert_eq!(n, 200, "one box per switch, both directions");
}

/// Allocations made by `rounds` spawn + run + finish + drop cycles of a greenlet whose closure
/// captures `captured`, after one cycle that warms the thread's pools (a stack, a control block).
/// `read` is a closure that captures nothing, so that the body's size is that of `captured`.
fn allocations_per_spawn<C, R>(rounds: u64, captured: C, read: R) -> u64
where
    C: Clone + 'static,
    R: Fn(&C) -> u64 + Copy + 'static,
{
    assert_eq!(std::mem::size_of::<R>(), 0);
    let cycle = |i: u64| {
        let c = captured.clone();
        let g = Greenlet::new(move |v| v.take::<u64>() + read(&c));
        assert_eq!(g.switch(i).take::<u64>(), i + read(&captured));
    };
    cycle(0);
    let before = allocations();
    for i in 1..=rounds {
        cycle(i);
    }
    allocations() - before
}

#[test]
fn spawning_a_greenlet_with_a_small_closure_does_not_allocate() {
    // A handle (one word) and three more words: the 32 bytes a body keeps in place.
    let r = root();
    assert_eq!(
        allocations_per_spawn(1000, (r, [1u64, 2, 3]), |(_, a)| a[0] + a[1] + a[2]),
        0
    );
    assert_eq!(
        allocations_per_spawn(1000, (), |_| 0),
        0,
        "a closure capturing nothing"
    );
}

#[test]
fn spawning_a_greenlet_with_a_large_closure_allocates_its_box_only() {
    // The control: 40 bytes of captures are boxed, once per greenlet (the counter sees it).
    assert_eq!(
        allocations_per_spawn(1000, [1u64, 2, 3, 4, 5], |a| a.iter().sum()),
        1000
    );
}
