//! Rule 8: greenlets belong to their thread. Compile-fail tests (`tests/ui/`, run by trybuild)
//! prove that handles can be neither sent to nor shared with another thread; a stress test runs
//! greenlets on eight threads at once and checks that each thread gets exactly the results it
//! gets alone.

use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};

use greenlet::{Greenlet, Value, current, root};

/// `Greenlet` (and `current()`, `root()`, `Builder`, which hold one) is neither `Send` nor
/// `Sync`. The expected compiler errors are in `tests/ui/*.stderr`; they name the handle's
/// fields, so after changing those, regenerate them with `TRYBUILD=overwrite` and review. Checked on x86_64 only: the property does not depend on the target, and under
/// qemu the test would compile the crate again inside the emulator.
#[test]
#[cfg_attr(
    not(target_arch = "x86_64"),
    ignore = "compile-time property, checked by the x86_64 run"
)]
fn handles_cannot_be_sent_or_shared_across_threads() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/greenlet_not_send.rs");
    t.compile_fail("tests/ui/greenlet_not_sync.rs");
    t.compile_fail("tests/ui/current_not_send.rs");
    t.compile_fail("tests/ui/builder_not_send.rs");
    // A value may hold an `Rc`: it must stay on its thread too.
    t.compile_fail("tests/ui/value_not_send.rs");
    t.compile_fail("tests/ui/value_not_sync.rs");
}

const THREADS: usize = 8;

/// What one thread's workload computed; equal on every run for the same seed.
#[derive(Debug, PartialEq, Eq)]
struct Report {
    ring_total: u64,
    generated: Vec<u64>,
    chain_result: u64,
    caught: u32,
    kills_seen: u32,
}

/// A ring of three greenlets passing a counter around.
fn ring(seed: u64, rounds: u64) -> u64 {
    let total = Rc::new(Cell::new(0u64));
    let slots: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
    let make = |share: u64| {
        let (total, slots) = (total.clone(), slots.clone());
        move |first: Value| {
            let me = first.take::<usize>();
            for round in 0..rounds {
                total.set(total.get().wrapping_mul(31).wrapping_add(share + round));
                if round % 64 == 0 {
                    // Let the other threads run in the middle of a chain of switches.
                    std::thread::yield_now();
                }
                let next = slots.borrow()[(me + 1) % 3].clone();
                next.switch(me + 1);
            }
        }
    };
    let gs: Vec<Greenlet> = (0..3).map(|i| Greenlet::new(make(seed + i))).collect();
    slots.borrow_mut().extend(gs.iter().cloned());
    gs[0].switch(0_usize);
    slots.borrow_mut().clear();
    total.get()
}

/// A generator built on a greenlet.
fn generate(seed: u64, n: u64) -> Vec<u64> {
    let g = Greenlet::new(move |_| {
        for i in 0..n {
            root().switch(Some(seed * 1000 + i * i));
        }
        None::<u64>
    });
    std::iter::from_fn(|| g.switch(()).take::<Option<u64>>()).collect()
}

/// A chain of greenlets, each created inside the previous one, each adding to its child's
/// result as it climbs back through the parents.
fn chain(seed: u64, depth: u64) -> u64 {
    fn level(seed: u64, left: u64) -> u64 {
        if left == 0 {
            return seed;
        }
        let child = Greenlet::new(move |_| level(seed, left - 1));
        child.switch(()).take::<u64>().wrapping_mul(3) + left
    }
    Greenlet::new(move |_| level(seed, depth))
        .switch(())
        .take::<u64>()
}

/// Throws caught inside greenlets, and kills on drop counted by the victims' destructors.
fn throws_and_kills(rounds: u32) -> (u32, u32) {
    let caught = Rc::new(Cell::new(0));
    let kills = Rc::new(Cell::new(0));
    struct OnKill(Rc<Cell<u32>>);
    impl Drop for OnKill {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    for _ in 0..rounds {
        let c = caught.clone();
        let g = Greenlet::new(move |_| {
            let r = catch_unwind(AssertUnwindSafe(|| root().switch(())));
            if r.is_err() {
                c.set(c.get() + 1);
            }
            root().switch(());
        });
        g.switch(());
        g.throw(7_u32);
        let k = kills.clone();
        let victim = Greenlet::new(move |_| {
            let _k = OnKill(k.clone());
            root().switch(());
        });
        victim.switch(());
        drop(victim);
        drop(g); // suspended again after the catch: killed too (nothing counted)
    }
    // resume_unwind: a panic without the hook's message on stderr.
    let panicking = Greenlet::new(|_| resume_unwind(Box::new(5_u32)));
    let r = catch_unwind(AssertUnwindSafe(|| panicking.switch(())));
    assert_eq!(r.unwrap_err().downcast::<u32>().ok().map(|b| *b), Some(5));
    (caught.get(), kills.get())
}

fn workload(seed: u64) -> Report {
    let me = std::thread::current().id();
    // Every greenlet runs on the thread that made it.
    let on_this_thread = Greenlet::new(move |_| std::thread::current().id() == me)
        .switch(())
        .take::<bool>();
    assert!(on_this_thread);
    let (caught, kills_seen) = throws_and_kills(200);
    Report {
        ring_total: ring(seed, 10_000),
        generated: generate(seed, 300),
        chain_result: chain(seed, 40),
        caught,
        kills_seen,
    }
}

thread_local! {
    static LEFT_SUSPENDED: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn greenlets_run_on_eight_threads_at_once() {
    let start = Arc::new(Barrier::new(THREADS));
    // Counts the greenlets left suspended at thread exit whose stacks were unwound.
    let unwound_at_exit = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..THREADS as u64)
        .map(|seed| {
            let (start, unwound) = (start.clone(), unwound_at_exit.clone());
            std::thread::spawn(move || {
                start.wait();
                let report = workload(seed);
                // Leave greenlets suspended for thread exit to kill.
                struct Unwound(Arc<AtomicUsize>);
                impl Drop for Unwound {
                    fn drop(&mut self) {
                        self.0.fetch_add(1, Ordering::SeqCst);
                    }
                }
                for _ in 0..4 {
                    let u = unwound.clone();
                    let g = Greenlet::new(move |_| {
                        let _u = Unwound(u.clone());
                        root().switch(());
                    });
                    g.switch(());
                    LEFT_SUSPENDED.with(|l| l.borrow_mut().push(g));
                }
                (root().id(), report)
            })
        })
        .collect();
    let results: Vec<(u64, Report)> = threads.into_iter().map(|t| t.join().unwrap()).collect();

    let mut roots: Vec<u64> = results.iter().map(|(id, _)| *id).collect();
    roots.sort_unstable();
    roots.dedup();
    assert_eq!(roots.len(), THREADS, "each thread has its own root");
    assert!(!roots.contains(&root().id()));
    assert_eq!(
        unwound_at_exit.load(Ordering::SeqCst),
        THREADS * 4,
        "greenlets suspended at thread exit are killed"
    );
    for (seed, (_, report)) in results.iter().enumerate() {
        // The same workload alone, on this thread, gives the same results.
        assert_eq!(report, &workload(seed as u64), "thread {seed}");
        assert_eq!(report.caught, 200);
        assert_eq!(report.kills_seen, 200);
    }
    assert!(current().is_root());
}
