//! Every value on a greenlet's stack is dropped exactly once, whichever way the greenlet ends:
//! killed, panicked, dropped while suspended (rule 6), or still suspended when its thread
//! exits. Also the documented policy for a panic during a kill.
//!
//! `tests/semantics.rs` checks that drops *happen* (rules 3 and 6); here a ledger counts, per
//! value, how many times it was dropped, so a double drop or a missed one both fail, and the
//! values include the body's captures, values in flight and panic payloads.

mod common;

use std::any::Any;
use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, panic_any, resume_unwind};
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use greenlet::{Greenlet, GreenletExit, Value, current, root};

/// How many times each tracked value was dropped, by id. Shared across threads.
#[derive(Clone, Default)]
struct Ledger(Arc<Mutex<Vec<u32>>>);

/// A value that records its drop in a ledger.
struct Tracked {
    id: usize,
    ledger: Ledger,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.ledger.0.lock().unwrap()[self.id] += 1;
    }
}

impl Ledger {
    fn value(&self) -> Tracked {
        let mut counts = self.0.lock().unwrap();
        counts.push(0);
        Tracked {
            id: counts.len() - 1,
            ledger: self.clone(),
        }
    }

    fn counts(&self) -> Vec<u32> {
        self.0.lock().unwrap().clone()
    }

    /// Every value made so far was dropped exactly once.
    #[track_caller]
    fn assert_each_dropped_once(&self) {
        let counts = self.counts();
        assert!(!counts.is_empty(), "the test made no values");
        let wrong: Vec<(usize, u32)> = counts
            .iter()
            .copied()
            .enumerate()
            .filter(|&(_, n)| n != 1)
            .collect();
        assert!(
            wrong.is_empty(),
            "values dropped other than once (id, times): {wrong:?} of {}",
            counts.len()
        );
    }
}

/// Recurses `depth` frames, each holding a tracked value, then runs `bottom`.
fn nested(ledger: &Ledger, depth: u32, bottom: &mut dyn FnMut()) {
    let _frame = ledger.value();
    if depth == 0 {
        bottom();
    } else {
        nested(ledger, depth - 1, bottom);
    }
}

/// A greenlet that captures a tracked value, keeps the one it is started with, and suspends
/// `depth` frames deep, each frame holding one more.
fn parked(ledger: &Ledger, depth: u32) -> Greenlet {
    let captured = ledger.value();
    let l = ledger.clone();
    let g = Greenlet::new(move |first: Value| {
        let _captured = &captured;
        let _in_flight = first.take::<Tracked>();
        nested(&l, depth, &mut || {
            // The value sent to the root is the root's to drop.
            root().switch(l.value());
        });
    });
    let sent_back = g.switch(ledger.value());
    assert!(sent_back.is::<Tracked>());
    g
}

#[test]
fn killed_greenlet_drops_each_value_once() {
    let ledger = Ledger::default();
    let g = parked(&ledger, 8);
    assert!(g.kill().is_greenlet_exit());
    assert!(g.is_dead());
    drop(g); // frees the body and its capture
    ledger.assert_each_dropped_once();
}

#[test]
fn panicked_greenlet_drops_its_stack_and_the_payload_once() {
    let ledger = Ledger::default();
    let l = ledger.clone();
    let outer = Greenlet::new(move |_| {
        let _outer_frame = l.value();
        let l2 = l.clone();
        // The panic starts two greenlets down and unwinds both stacks on its way to the root.
        let inner = Greenlet::new(move |_| {
            nested(&l2, 6, &mut || panic_any(l2.value()));
        });
        inner.switch(());
    });
    let payload = catch_unwind(AssertUnwindSafe(|| outer.switch(()))).unwrap_err();
    assert!(payload.is::<Tracked>());
    drop(payload);
    drop(outer);
    ledger.assert_each_dropped_once();
}

#[test]
fn greenlet_dropped_while_suspended_drops_each_value_once() {
    let ledger = Ledger::default();
    // From the root.
    drop(parked(&ledger, 8));
    ledger.assert_each_dropped_once();
    // From another greenlet (the dropper is the victim's temporary parent).
    let victim = Rc::new(RefCell::new(Some(parked(&ledger, 8))));
    let v = victim.clone();
    let l = ledger.clone();
    let dropper = Greenlet::new(move |_| {
        let _mine = l.value();
        drop(v.borrow_mut().take());
        assert!(!current().is_root(), "control came back to the dropper");
    });
    dropper.switch(());
    assert!(dropper.is_dead());
    drop(dropper);
    ledger.assert_each_dropped_once();
}

#[test]
fn nested_kills_on_drop_drop_each_value_once() {
    // Each greenlet holds the only handle to the next on its stack; dropping the first kills
    // the whole chain, one kill inside another's unwinding.
    let ledger = Ledger::default();
    let mut next: Option<Greenlet> = None;
    for _ in 0..6 {
        let l = ledger.clone();
        let mut child = next.take();
        let g = Greenlet::new(move |_| {
            let _child = child.take();
            nested(&l, 3, &mut || {
                root().switch(());
            });
        });
        g.switch(());
        next = Some(g);
    }
    drop(next);
    ledger.assert_each_dropped_once();
}

#[test]
fn values_sent_to_dead_or_unstarted_greenlets_are_dropped_once() {
    let ledger = Ledger::default();
    let dead = Greenlet::new(|v| v);
    dead.switch(());
    // A value sent to a dead greenlet comes back to its first live ancestor: us.
    let back = dead.switch(ledger.value());
    assert!(back.is::<Tracked>());
    drop(back);
    // A payload thrown into an unstarted greenlet kills it unrun and climbs to us.
    let l = ledger.clone();
    let captured = ledger.value();
    let unstarted = Greenlet::new(move |_| {
        let _c = &captured;
        let _never = l.value();
    });
    let payload = catch_unwind(AssertUnwindSafe(|| unstarted.throw(ledger.value()))).unwrap_err();
    assert!(payload.is::<Tracked>());
    drop(payload);
    drop(unstarted);
    // A value switched into the running greenlet comes straight back.
    drop(current().switch(ledger.value()));
    ledger.assert_each_dropped_once();
}

#[test]
fn reset_and_rerun_drops_each_run_values_once() {
    let ledger = Ledger::default();
    let l = ledger.clone();
    let g = Greenlet::new(move |_| {
        nested(&l, 4, &mut || {
            root().switch(());
        });
    });
    for _ in 0..3 {
        g.switch(());
        g.kill();
        g.reset().unwrap();
    }
    g.switch(());
    drop(g);
    ledger.assert_each_dropped_once();
}

/// Runs `setup` on a new thread, which ends with greenlets still suspended.
fn on_a_thread_that_exits(setup: impl FnOnce() + Send + 'static) {
    std::thread::spawn(setup).join().unwrap();
}

thread_local! {
    static KEPT: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn greenlets_suspended_at_thread_exit_drop_each_value_once() {
    // The handles live in a thread-local first used after the greenlet machinery: its
    // destructor runs first (thread-locals are destroyed in reverse order of first use), while
    // the thread's root is still there.
    let ledger = Ledger::default();
    let l = ledger.clone();
    on_a_thread_that_exits(move || {
        let a = parked(&l, 6);
        let b = parked(&l, 6);
        // c holds the only handle to d: killing c at exit kills d inside c's unwinding.
        let d = parked(&l, 3);
        let l2 = l.clone();
        let mut d = Some(d);
        let c = Greenlet::new(move |_| {
            let _d = d.take();
            nested(&l2, 3, &mut || {
                root().switch(());
            });
        });
        c.switch(());
        KEPT.with(|k| k.borrow_mut().extend([a, b, c]));
    });
    ledger.assert_each_dropped_once();
}

thread_local! {
    static KEPT_EARLY: RefCell<Vec<Greenlet>> = const { RefCell::new(Vec::new()) };
}

#[test]
fn greenlets_in_a_thread_local_older_than_the_runtime_drop_each_value_once() {
    // Here the thread-local is used before any greenlet, so its destructor runs after the
    // engine's own thread state has gone: the kills at exit happen on a thread whose root has
    // already been released.
    let ledger = Ledger::default();
    let l = ledger.clone();
    on_a_thread_that_exits(move || {
        KEPT_EARLY.with(|k| k.borrow_mut().clear());
        let a = parked(&l, 6);
        let b = parked(&l, 2);
        KEPT_EARLY.with(|k| k.borrow_mut().extend([a, b]));
    });
    ledger.assert_each_dropped_once();
}

// ---------------------------------------------------------------------------------------------
// A panic during a kill: the policy documented on `Greenlet`
// ---------------------------------------------------------------------------------------------

/// A greenlet that catches the kill, drops its frames, then panics with a tracked payload.
fn panics_when_killed(ledger: &Ledger, name: &str) -> Greenlet {
    let l = ledger.clone();
    let g = Greenlet::builder()
        .name(name)
        .spawn(move |_| {
            let caught = catch_unwind(AssertUnwindSafe(|| {
                nested(&l, 4, &mut || {
                    root().switch(());
                });
            }));
            match caught {
                Err(p) if p.is::<GreenletExit>() => {
                    panic_any(l.value());
                }
                Err(p) => resume_unwind(p),
                Ok(()) => {}
            }
        })
        .unwrap();
    g.switch(());
    g
}

#[test]
fn panic_during_an_explicit_kill_propagates_to_the_killer() {
    let ledger = Ledger::default();
    let g = panics_when_killed(&ledger, "victim");
    let payload: Box<dyn Any + Send> = catch_unwind(AssertUnwindSafe(|| g.kill())).unwrap_err();
    assert!(payload.is::<Tracked>(), "the panic comes out of kill()");
    assert!(g.is_dead());
    drop(payload);
    drop(g);
    ledger.assert_each_dropped_once();
}

#[test]
fn panic_during_a_kill_on_drop_is_reported_and_dropped() {
    let ledger = Ledger::default();
    let g = panics_when_killed(&ledger, "victim");
    drop(g); // does not panic: the panic is printed on stderr and its payload dropped
    assert!(current().is_root());
    ledger.assert_each_dropped_once();
    // The same from another greenlet: control comes back to the dropper, which goes on.
    let victim = Rc::new(RefCell::new(Some(panics_when_killed(&ledger, "victim"))));
    let v = victim.clone();
    let dropper = Greenlet::new(move |_| {
        drop(v.borrow_mut().take());
        "dropper went on"
    });
    assert_eq!(dropper.switch(()).take::<&str>(), "dropper went on");
    ledger.assert_each_dropped_once();
}

#[test]
fn panic_during_a_kill_on_drop_prints_the_greenlet_and_the_message() {
    if std::env::var_os("GREENLET_DROPS_CHILD").is_some() {
        let g = Greenlet::builder()
            .name("stubborn")
            .spawn(|_| {
                if let Err(p) = catch_unwind(AssertUnwindSafe(|| root().switch(()))) {
                    assert!(p.is::<GreenletExit>());
                    panic!("cleanup failed");
                }
            })
            .unwrap();
        g.switch(());
        let id = g.id();
        drop(g);
        println!("dropper went on; id {id}");
        return;
    }
    let out = common::self_command()
        .args([
            "--exact",
            "panic_during_a_kill_on_drop_prints_the_greenlet_and_the_message",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("GREENLET_DROPS_CHILD", "1")
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed: {stdout}\n{stderr}");
    let id = stdout
        .split("dropper went on; id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no id in the child's output: {stdout}"));
    let expected = format!(
        "greenlet: a panic escaped while killing unreferenced greenlet 'stubborn' (#{id}): \
         cleanup failed; ignored"
    );
    assert!(
        stderr.contains(&expected),
        "expected {expected:?} on stderr, got:\n{stderr}"
    );
}

// ---------------------------------------------------------------------------------------------
// Regression
// ---------------------------------------------------------------------------------------------

/// Rule 6 with a dropper that loses its own last handle during the kill: `d` drops the last
/// handle to `t`, and `t`'s unwinding drops the last handle to `d`, which is waiting inside
/// the kill. Found by `tests/model.rs`: the engine used to dispose of `d` there, swallowing the
/// kill, leaking `t` and handing the root `GreenletExit` instead of `d`'s result (fixed in the
/// engine by a handle the killer holds on itself during the kill).
#[test]
fn dropper_losing_its_last_handle_during_the_kill_finishes_normally() {
    let ledger = Ledger::default();
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let s = slot.clone();
    let l = ledger.clone();
    let t = Greenlet::builder()
        .name("t")
        .spawn(move |v: Value| {
            let d_handle = v.take::<Greenlet>();
            nested(&l, 3, &mut || {
                root().switch("t parked");
            });
            drop(d_handle);
        })
        .unwrap();
    let l = ledger.clone();
    let d = Greenlet::builder()
        .name("d")
        .spawn(move |v: Value| {
            let _mine = l.value();
            let t = v.take::<Greenlet>();
            root().switch("d parked");
            drop(s.borrow_mut().take()); // now only t's stack holds a handle to d
            drop(t); // the last handle to t: kill it; its unwinding drops d's last handle
            "d done"
        })
        .unwrap();
    assert_eq!(t.switch(d.clone()).take::<&str>(), "t parked");
    assert_eq!(d.switch(t).take::<&str>(), "d parked");
    // Resume d without holding a handle to it: through a child that returns into it.
    let c = Greenlet::builder().parent(&d).spawn(|v| v).unwrap();
    *slot.borrow_mut() = Some(d);
    let got = c.switch(());
    assert_eq!(got.downcast::<&str>().ok(), Some("d done"));
    drop(c);
    ledger.assert_each_dropped_once();
}
