//! Stack overflow reporting (rule 11, case 19), checked in child processes.
//!
//! Each test re-executes this test binary with `--exact <its own name>` and
//! `GREENLET_TEST_CHILD=1`; in that mode the test runs its scenario, which ends the process.
//! The parent checks how the child died and what it printed.

mod common;

use common::{ChildRun, deep_frames, in_child, report, run_child};
use greenlet::{Greenlet, Value, root};

/// `libc::SIGABRT` (6 on Linux and the BSDs); `libc` is not a dev-dependency.
const SIGABRT: i32 = 6;
/// `libc::SIGSEGV` (11 on Linux and the BSDs).
const SIGSEGV: i32 = 11;

/// Stack size of the greenlets that overflow; the message prints it as "64 KiB".
const SMALL_STACK: usize = 64 * 1024;

/// A greenlet named `name` with a 64 KiB stack that runs `deep_frames(depth)` for every depth
/// switched to it, switching each result back to the root.
fn recursing_greenlet(name: &str) -> Greenlet {
    Greenlet::builder()
        .name(name)
        .stack_size(SMALL_STACK)
        .spawn(|first: Value| {
            let mut depth = first.take::<usize>();
            loop {
                let r = deep_frames(depth);
                depth = root().switch(r).take::<usize>();
            }
        })
        .expect("spawn a 64 KiB greenlet")
}

fn assert_greenlet_overflow(run: &ChildRun) {
    let id = run.reported("deep-id").unwrap_or_else(|| {
        panic!(
            "the child did not report the greenlet id\n{}",
            run.explain()
        )
    });
    let expected = format!("greenlet 'deep' (#{id}) has overflowed its stack (64 KiB)");
    assert!(
        run.stderr.contains(&expected),
        "stderr lacks {expected:?}\n{}",
        run.explain()
    );
    assert_eq!(run.signal, Some(SIGABRT), "{}", run.explain());
}

#[test]
fn case_19_recursion_fits_then_overflow_names_the_greenlet() {
    if in_child() {
        let g = recursing_greenlet("deep");
        report("deep-id", g.id());
        // Four 10 KiB frames fit in 64 KiB.
        assert_eq!(g.switch(4_usize).take::<usize>(), 1);
        report("fits", "ok");
        // Unbounded recursion hits the guard page.
        g.switch(usize::MAX);
        report("survived", "overflow was not detected");
        return;
    }
    let run = run_child(
        "case_19_recursion_fits_then_overflow_names_the_greenlet",
        &[],
    );
    assert_eq!(
        run.reported("fits"),
        Some("ok"),
        "recursion within the stack size must succeed\n{}",
        run.explain()
    );
    assert_greenlet_overflow(&run);
}

#[test]
fn overflow_on_a_pooled_stack_names_the_new_greenlet() {
    if in_child() {
        // The first greenlet dies, and its stack goes back to the thread's pool...
        let first = recursing_greenlet("first");
        let first_addr = first_stack_local(&first);
        first.switch(3_usize);
        first.kill();
        assert!(first.is_dead());
        // ...where the next greenlet of the same stack size takes it.
        let deep = recursing_greenlet("deep");
        report("deep-id", deep.id());
        let deep_addr = first_stack_local(&deep);
        let distance = first_addr.abs_diff(deep_addr);
        report("same-stack", distance < SMALL_STACK);
        deep.switch(usize::MAX);
        report("survived", "overflow was not detected");
        return;
    }
    let run = run_child("overflow_on_a_pooled_stack_names_the_new_greenlet", &[]);
    assert_eq!(
        run.reported("same-stack"),
        Some("true"),
        "the second greenlet should reuse the first one's stack\n{}",
        run.explain()
    );
    assert_greenlet_overflow(&run);
    assert!(!run.stderr.contains("'first'"), "{}", run.explain());
}

/// Address of a local of an injected function on `g`'s stack (started with depth 1, so `g` is
/// suspended afterwards).
fn first_stack_local(g: &Greenlet) -> usize {
    let addr = std::rc::Rc::new(std::cell::Cell::new(0usize));
    let a = addr.clone();
    g.inject(move || {
        let local = 0u8;
        a.set(std::hint::black_box(&local) as *const u8 as usize);
    });
    g.switch(1_usize);
    addr.get()
}

/// A non-null address in the never-mapped first page. (A null pointer would trip
/// `write_volatile`'s debug precondition check, which aborts before any fault happens.)
fn unmapped_address() -> *mut u8 {
    std::ptr::without_provenance_mut::<u8>(16)
}

fn assert_plain_segfault(run: &ChildRun) {
    assert_eq!(
        run.reported("about-to-fault"),
        Some("yes"),
        "the child did not get to the fault\n{}",
        run.explain()
    );
    assert_eq!(run.signal, Some(SIGSEGV), "{}", run.explain());
    assert!(!run.stderr.contains("overflowed"), "{}", run.explain());
}

#[test]
fn fault_outside_greenlet_stacks_is_a_plain_segfault() {
    if in_child() {
        // Use greenlets first, so that the overflow handler is installed.
        let g = recursing_greenlet("deep");
        g.switch(2_usize);
        let h = Greenlet::new(|v| v);
        h.switch(());
        report("about-to-fault", "yes");
        // SAFETY: deliberately invalid: the write faults (the first page is never mapped), and
        // the process dies by SIGSEGV before anything observes the write.
        unsafe { std::ptr::write_volatile(unmapped_address(), 1) };
        report("survived", "no fault");
        return;
    }
    let run = run_child("fault_outside_greenlet_stacks_is_a_plain_segfault", &[]);
    assert_plain_segfault(&run);
}

#[test]
fn fault_inside_a_greenlet_away_from_its_guard_is_a_plain_segfault() {
    if in_child() {
        let g = Greenlet::builder()
            .name("deep")
            .stack_size(SMALL_STACK)
            .spawn(|_| {
                report("about-to-fault", "yes");
                // SAFETY: deliberately invalid, as above; the fault is not in this greenlet's
                // guard page, so it must not be reported as an overflow.
                unsafe { std::ptr::write_volatile(unmapped_address(), 1) };
            })
            .unwrap();
        g.switch(());
        report("survived", "no fault");
        return;
    }
    let run = run_child(
        "fault_inside_a_greenlet_away_from_its_guard_is_a_plain_segfault",
        &[],
    );
    assert_plain_segfault(&run);
}

#[test]
fn thread_stack_overflow_keeps_rusts_message() {
    if in_child() {
        let t = std::thread::Builder::new()
            .name("worker".into())
            .stack_size(256 * 1024)
            .spawn(|| {
                // Greenlets on this thread first: the handler is installed and the root is made.
                let g = recursing_greenlet("deep");
                g.switch(2_usize);
                report("about-to-overflow", "yes");
                // Then overflow the thread's own stack, outside any greenlet.
                deep_frames(usize::MAX)
            })
            .unwrap();
        let _ = t.join();
        report("survived", "overflow was not detected");
        return;
    }
    let run = run_child("thread_stack_overflow_keeps_rusts_message", &[]);
    assert_eq!(
        run.reported("about-to-overflow"),
        Some("yes"),
        "{}",
        run.explain()
    );
    assert_eq!(run.signal, Some(SIGABRT), "{}", run.explain());
    assert!(run.stderr.contains("thread 'worker'"), "{}", run.explain());
    assert!(
        run.stderr.contains("has overflowed its stack"),
        "{}",
        run.explain()
    );
    assert!(!run.stderr.contains("greenlet '"), "{}", run.explain());
}
