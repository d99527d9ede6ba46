//! Behaviour tests: every numbered case of `shared/semantics.md` (`case_NN_*`), then the
//! sub-points of its rules that no case covers (`rule_NN_*`), then the smaller API promises.
//!
//! Case 19's overflow half lives in `tests/overflow.rs` (it needs a child process).
//!
//! Bodies that panic on purpose print the default panic message on stderr; that is expected.

mod common;

use common::deep_frames;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use greenlet::{
    Error, Event, Greenlet, GreenletExit, MAX_STACK_SIZE, MIN_STACK_SIZE, Tracer, Value, current,
    gettrace, root, settrace,
};

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The panic payload the tests throw and raise; the number tells panics apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct MyError(u32);

/// Panics with `MyError(n)`.
fn fail(n: u32) -> ! {
    std::panic::panic_any(MyError(n))
}

/// Panics with `MyError(n)`, as a function returning `()` (a body that only panics).
fn boom(n: u32) {
    fail(n)
}

/// Panics with the quiet-kill payload.
fn exit_quietly() {
    std::panic::panic_any(GreenletExit)
}

/// Runs `f`, which must panic, and returns the payload.
fn expect_panic<T>(f: impl FnOnce() -> T) -> Box<dyn Any + Send> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(_) => panic!("expected a panic, got a normal return"),
        Err(p) => p,
    }
}

/// The `MyError` inside a panic payload (fails the test for any other payload).
fn my_error(p: Box<dyn Any + Send>) -> MyError {
    match p.downcast::<MyError>() {
        Ok(e) => *e,
        Err(other) => panic!(
            "expected a MyError payload, got {}",
            describe_payload(&*other)
        ),
    }
}

fn describe_payload(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("&str {s:?}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("String {s:?}")
    } else if p.is::<GreenletExit>() {
        "GreenletExit".to_string()
    } else {
        "<unknown payload type>".to_string()
    }
}

/// A shared list of numbers the tests push to.
type Log = Rc<RefCell<Vec<i32>>>;

/// A shared list of events as text.
type Trail = Rc<RefCell<Vec<String>>>;

fn push(log: &Log, v: i32) {
    log.borrow_mut().push(v);
}

fn note(trail: &Trail, s: impl Into<String>) {
    trail.borrow_mut().push(s.into());
}

fn snapshot(trail: &Trail) -> Vec<String> {
    trail.borrow().clone()
}

/// Counts how many times it (or its clones' owners) was dropped.
struct DropCounter(Rc<Cell<u32>>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn id_of(g: Option<Greenlet>) -> Option<u64> {
    g.map(|g| g.id())
}

// ---------------------------------------------------------------------------------------------
// The numbered cases
// ---------------------------------------------------------------------------------------------

fn run_case_1() -> Vec<i32> {
    let log: Log = Rc::default();
    let l = log.clone();
    let g = Greenlet::new(move |_| {
        push(&l, 1);
        root().switch(());
        push(&l, 3);
    });
    push(&log, 0);
    g.switch(());
    push(&log, 2);
    g.switch(());
    push(&log, 4);
    assert!(g.is_dead());
    log.borrow().clone()
}

#[test]
fn case_01_switch_order() {
    assert_eq!(run_case_1(), [0, 1, 2, 3, 4]);
}

/// The body both greenlets of case 2 run: push 1; switch to the parent; push 1, 1.
fn case_2_body(log: Log) -> impl FnMut(Value) + 'static {
    move |_| {
        push(&log, 1);
        current()
            .parent()
            .expect("a greenlet has a parent")
            .switch(());
        push(&log, 1);
        push(&log, 1);
    }
}

#[test]
fn case_02_two_greenlets_same_body() {
    let log: Log = Rc::default();
    let g = Greenlet::new(case_2_body(log.clone()));
    let h = Greenlet::new(case_2_body(log.clone()));
    g.switch(());
    assert_eq!(log.borrow().len(), 1);
    h.switch(());
    assert_eq!(log.borrow().len(), 2);
    h.switch(());
    assert_eq!(log.borrow().len(), 4);
    assert!(h.is_dead());
    assert!(!g.is_dead());
    g.switch(());
    assert_eq!(log.borrow().len(), 6);
    assert!(g.is_dead());
}

#[test]
fn case_03_child_created_in_greenlet_has_it_as_parent() {
    let trail: Trail = Rc::default();
    let t = trail.clone();
    let a = Greenlet::builder()
        .name("A")
        .spawn(move |_| {
            let me = current();
            let t2 = t.clone();
            let child = Greenlet::new(move |_| {
                note(&t2, "child runs");
                7
            });
            let parent_is_a = child.parent() == Some(me.clone());
            let got = child.switch(()).take::<i32>();
            note(&t, "A resumed");
            (parent_is_a, got, child.is_dead())
        })
        .unwrap();
    let (parent_is_a, got, child_dead) = a.switch(()).take::<(bool, i32, bool)>();
    assert!(
        parent_is_a,
        "a greenlet created inside A must have A as parent"
    );
    assert_eq!(got, 7, "A's pending switch returns the child's result");
    assert!(child_dead);
    assert_eq!(snapshot(&trail), ["child runs", "A resumed"]);
    assert!(a.is_dead());
}

#[test]
fn case_04_first_switch_passes_the_argument() {
    let seen: Rc<RefCell<Option<String>>> = Rc::default();
    let s = seen.clone();
    let g = Greenlet::new(move |arg: Value| {
        *s.borrow_mut() = Some(arg.take::<String>());
        root().switch(());
    });
    g.switch(String::from("the argument"));
    assert_eq!(seen.borrow().as_deref(), Some("the argument"));
    assert!(g.is_active());
}

#[test]
fn case_05_return_value_goes_to_pending_switch() {
    // Returns on the first switch.
    let g = Greenlet::new(|_| 42_i64);
    assert_eq!(g.switch(()).take::<i64>(), 42);
    assert!(g.is_dead());

    // Returns after being suspended and resumed.
    let g = Greenlet::new(|_| {
        let v = root().switch("suspended").take::<i32>();
        v * 2
    });
    assert_eq!(g.switch(()).take::<&str>(), "suspended");
    assert_eq!(g.switch(21).take::<i32>(), 42);
    assert!(g.is_dead());
}

#[test]
fn case_06_switch_to_dead_greenlet_returns_at_once() {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let g = Greenlet::new(move |_| r.set(r.get() + 1));
    g.switch(());
    assert!(g.is_dead());
    assert_eq!(g.switch(25).take::<i32>(), 25);
    assert_eq!(runs.get(), 1, "the dead body must not run again");
    assert!(g.is_dead());
}

#[test]
fn case_07_top_level_current_is_root_without_parent() {
    let cur = current();
    assert!(cur.is_root());
    assert!(cur.is_current());
    assert_eq!(cur, root());
    assert!(cur.parent().is_none());
    assert!(root().parent().is_none());
    assert_eq!(root().name(), Some("main"));
}

#[test]
fn case_08_states() {
    let seen_running = Rc::new(Cell::new((false, false, false)));
    let s = seen_running.clone();
    let g = Greenlet::new(move |_| {
        let me = current();
        s.set((me.is_active(), me.is_dead(), me.is_started()));
        root().switch(());
    });
    // Unstarted.
    assert!(!g.is_started());
    assert!(!g.is_active());
    assert!(!g.is_dead());
    g.switch(());
    // Running (seen from inside).
    assert_eq!(seen_running.get(), (true, false, true));
    // Suspended.
    assert!(g.is_started());
    assert!(g.is_active());
    assert!(!g.is_dead());
    g.switch(());
    // Dead.
    assert!(g.is_started());
    assert!(!g.is_active());
    assert!(g.is_dead());
}

#[test]
fn case_09_body_panic_comes_out_of_parent_switch() {
    // Panics on the first run.
    let g = Greenlet::new(|_| boom(9));
    let p = expect_panic(|| g.switch(()));
    assert_eq!(my_error(p), MyError(9));
    assert!(g.is_dead());

    // Panics after having been suspended: out of the parent's later switch.
    let g = Greenlet::new(|_| {
        root().switch(());
        boom(90)
    });
    g.switch(());
    let p = expect_panic(|| g.switch(()));
    assert_eq!(my_error(p), MyError(90));
    assert!(g.is_dead());
}

#[test]
fn case_10_throw_caught_and_value_switched_back() {
    let g = Greenlet::new(|_| {
        let outcome = catch_unwind(AssertUnwindSafe(|| root().switch(())));
        match outcome {
            Err(p) if p.downcast_ref::<MyError>() == Some(&MyError(10)) => root().switch("ok"),
            Err(_) => root().switch("wrong payload"),
            Ok(_) => root().switch("no panic"),
        };
    });
    g.switch(());
    assert_eq!(g.throw(MyError(10)).take::<&str>(), "ok");
    assert!(g.is_active());
}

#[test]
fn case_11_kill_suspended_then_dead() {
    let after_switch = Rc::new(Cell::new(false));
    let a = after_switch.clone();
    let g = Greenlet::new(move |_| {
        root().switch(());
        a.set(true);
    });
    g.switch(());
    let v = g.kill();
    assert!(
        v.is_greenlet_exit(),
        "kill returns a GreenletExit value, got {v:?}"
    );
    assert!(v.is::<GreenletExit>());
    assert!(g.is_dead());
    assert!(!after_switch.get(), "the killed body must not go on");

    let again = g.kill();
    assert!(
        again.is_greenlet_exit(),
        "killing a dead greenlet returns GreenletExit"
    );
    assert!(g.is_dead());
}

#[test]
fn case_12_throw_into_unstarted_chain() {
    let ran = Rc::new(Cell::new(0));
    let r1 = ran.clone();
    let g1 = Greenlet::builder()
        .name("g1")
        .spawn(move |_| r1.set(r1.get() + 1))
        .unwrap();
    let r2 = ran.clone();
    let g2 = Greenlet::builder()
        .name("g2")
        .parent(&g1)
        .spawn(move |_| r2.set(r2.get() + 10))
        .unwrap();
    assert_eq!(g2.parent(), Some(g1.clone()));
    let p = expect_panic(|| g2.throw(MyError(12)));
    assert_eq!(my_error(p), MyError(12));
    assert!(g1.is_dead());
    assert!(g2.is_dead());
    assert_eq!(ran.get(), 0, "neither body may run");
}

/// Records into a trail when dropped.
struct Recorder {
    trail: Trail,
    what: &'static str,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        note(&self.trail, self.what);
    }
}

#[test]
fn case_13_drop_suspended_runs_drops_on_its_stack() {
    let trail: Trail = Rc::default();
    let t = trail.clone();
    let g = Greenlet::new(move |_| {
        let _on_stack = Recorder {
            trail: t.clone(),
            what: "dropped",
        };
        root().switch(());
        note(&t, "resumed normally");
    });
    g.switch(());
    assert!(snapshot(&trail).is_empty());
    drop(g);
    assert_eq!(snapshot(&trail), ["dropped"]);
}

#[test]
fn case_14_cyclic_parent_refused() {
    let g = Greenlet::new(|v| v);
    let err = g.set_parent(&g).unwrap_err();
    assert_eq!(err, Error::CyclicParent);
    assert_eq!(err.to_string(), "cyclic parent chain");
    assert_eq!(g.parent(), Some(root()));

    // g1 → g2 → g3 (each arrow: "has as parent").
    let g1 = Greenlet::new(|v| v);
    let g2 = Greenlet::new(|v| v);
    let g3 = Greenlet::new(|v| v);
    g1.set_parent(&g2).unwrap();
    g2.set_parent(&g3).unwrap();
    let err = g3.set_parent(&g1).unwrap_err();
    assert_eq!(err, Error::CyclicParent);
    assert_eq!(err.to_string(), "cyclic parent chain");
    assert_eq!(
        g3.parent(),
        Some(root()),
        "a refused set_parent changes nothing"
    );
    assert_eq!(g1.parent(), Some(g2.clone()));
    assert_eq!(g2.parent(), Some(g3.clone()));
}

#[test]
fn case_15_ten_threads_run_case_1() {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(10));
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                let mut results = Vec::new();
                for _ in 0..50 {
                    results.push(run_case_1());
                }
                results
            })
        })
        .collect();
    for t in threads {
        for result in t.join().expect("a thread running case 1 panicked") {
            assert_eq!(result, [0, 1, 2, 3, 4]);
        }
    }
}

/// A traced event: `(kind, origin name, target name)`.
type Traced = (String, String, String);

/// A tracer that records every event as [`Traced`], and where it records them.
fn recording_tracer() -> (Tracer, Rc<RefCell<Vec<Traced>>>) {
    let events: Rc<RefCell<Vec<Traced>>> = Rc::default();
    let sink = events.clone();
    let tracer = Tracer::new(move |e: &Event| {
        let kind = match e {
            Event::Switch { .. } => "switch",
            Event::Throw { .. } => "throw",
        };
        let name = |g: &Greenlet| g.name().unwrap_or("<unnamed>").to_string();
        sink.borrow_mut()
            .push((kind.to_string(), name(e.origin()), name(e.target())));
    });
    (tracer, events)
}

fn ev(kind: &str, origin: &str, target: &str) -> Traced {
    (kind.to_string(), origin.to_string(), target.to_string())
}

#[test]
fn case_16_tracer_sees_switches_and_throws() {
    let g1 = Greenlet::builder().name("g1").spawn(|_| 1).unwrap();
    let g2 = Greenlet::builder().name("g2").spawn(|_| boom(16)).unwrap();
    let (tracer, events) = recording_tracer();
    settrace(Some(tracer));
    g1.switch(());
    let p = expect_panic(|| g2.switch(()));
    settrace(None);
    assert_eq!(my_error(p), MyError(16));
    assert_eq!(
        *events.borrow(),
        [
            ev("switch", "main", "g1"),
            ev("switch", "g1", "main"),
            ev("switch", "main", "g2"),
            ev("throw", "g2", "main"),
        ]
    );
    assert!(gettrace().is_none());
}

#[test]
fn case_17_inject_runs_once_on_target_stack_before_it_resumes() {
    let trail: Trail = Rc::default();
    let body_local_addr = Rc::new(Cell::new(0usize));
    let t = trail.clone();
    let addr = body_local_addr.clone();
    let g = Greenlet::new(move |_| {
        let local = 0u8;
        addr.set(std::hint::black_box(&local) as *const u8 as usize);
        note(&t, "body before switch");
        let a = root().switch(()).take::<&str>();
        note(&t, format!("body resumed with {a}"));
        let b = root().switch(()).take::<&str>();
        note(&t, format!("body resumed with {b}"));
    });
    g.switch(());

    let runs = Rc::new(Cell::new(0));
    let ran_on = Rc::new(Cell::new(None));
    let inject_local_addr = Rc::new(Cell::new(0usize));
    let (t, r, on, addr) = (
        trail.clone(),
        runs.clone(),
        ran_on.clone(),
        inject_local_addr.clone(),
    );
    g.inject(move || {
        let local = 0u8;
        addr.set(std::hint::black_box(&local) as *const u8 as usize);
        r.set(r.get() + 1);
        on.set(Some(current().id()));
        note(&t, "inject");
    });
    assert_eq!(runs.get(), 0, "inject only schedules");
    g.switch("a");
    assert_eq!(runs.get(), 1);
    assert_eq!(ran_on.get(), Some(g.id()), "f runs as the target greenlet");
    let distance = body_local_addr.get().abs_diff(inject_local_addr.get());
    assert!(
        distance < g.stack_size(),
        "f must run on the target's stack: body local at {:#x}, f local at {:#x}",
        body_local_addr.get(),
        inject_local_addr.get()
    );
    g.switch("b");
    assert_eq!(runs.get(), 1, "f runs once, not on the next switch");
    assert_eq!(
        snapshot(&trail),
        [
            "body before switch",
            "inject",
            "body resumed with a",
            "body resumed with b"
        ]
    );
    assert!(g.is_dead());
}

#[test]
fn case_18_reset_dead_runs_body_from_top() {
    let trail: Trail = Rc::default();
    let t = trail.clone();
    let g = Greenlet::new(move |v: Value| {
        let n = v.take::<i32>();
        note(&t, format!("start {n}"));
        root().switch(());
        note(&t, format!("end {n}"));
        n
    });
    g.switch(1);
    assert_eq!(g.switch(()).take::<i32>(), 1);
    assert!(g.is_dead());
    g.reset().expect("reset a dead greenlet");
    assert!(!g.is_started());
    assert!(!g.is_dead());
    assert!(!g.is_active());
    g.switch(2);
    assert!(g.is_active());
    assert_eq!(g.switch(()).take::<i32>(), 2);
    assert!(g.is_dead());
    assert_eq!(snapshot(&trail), ["start 1", "end 1", "start 2", "end 2"]);
}

#[test]
fn case_19_recursion_within_stack_size_succeeds() {
    // The overflow half is in tests/overflow.rs (it ends the process).
    let g = Greenlet::builder()
        .name("deep")
        .stack_size(64 * 1024)
        .spawn(|v: Value| deep_frames(v.take::<usize>()))
        .unwrap();
    assert_eq!(g.stack_size(), 64 * 1024);
    assert_eq!(g.switch(4_usize).take::<usize>(), 1);
    assert!(g.is_dead());
}

/// A generator on greenlets, like Python greenlet's `genlet`: each `next` makes the caller the
/// generator's parent and switches in; the body "yields" by switching to its parent.
struct Generator {
    g: Greenlet,
}

impl Generator {
    fn counting(n: i32, seen: Log) -> Generator {
        Generator {
            g: Greenlet::new(move |_| {
                for i in 0..n {
                    push(&seen, i);
                    gen_yield(i);
                }
            }),
        }
    }
}

fn gen_yield(v: i32) {
    current()
        .parent()
        .expect("yield outside a generator")
        .switch(v);
}

impl Iterator for Generator {
    type Item = i32;

    fn next(&mut self) -> Option<i32> {
        if self.g.is_dead() {
            return None;
        }
        self.g.set_parent(&current()).expect("generator parent");
        let v = self.g.switch(());
        if self.g.is_dead() {
            None
        } else {
            Some(v.take::<i32>())
        }
    }
}

#[test]
fn case_20_generator() {
    let seen: Log = Rc::default();
    for _ in 0..3 {
        for j in Generator::counting(5, seen.clone()) {
            push(&seen, j);
        }
    }
    let once = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4];
    let expected: Vec<i32> = once.iter().copied().cycle().take(30).collect();
    assert_eq!(*seen.borrow(), expected);
}

// ---------------------------------------------------------------------------------------------
// Rule 1: switch
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_01_switch_to_current_returns_at_once() {
    // At top level.
    assert_eq!(root().switch(5).take::<i32>(), 5);
    assert_eq!(current().switch("same").take::<&str>(), "same");

    // Inside a greenlet: nothing else runs.
    let trail: Trail = Rc::default();
    let t = trail.clone();
    let g = Greenlet::new(move |_| {
        note(&t, "before");
        let v = current().switch(7).take::<i32>();
        note(&t, format!("got {v}"));
        v + 1
    });
    assert_eq!(g.switch(()).take::<i32>(), 8);
    assert_eq!(snapshot(&trail), ["before", "got 7"]);
}

#[test]
fn rule_01_switch_to_dead_goes_to_first_live_ancestor() {
    // p is suspended in a switch to the root; its child c is dead. Switching to c resumes p.
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let s = slot.clone();
    let p = Greenlet::builder()
        .name("p")
        .spawn(move |_| {
            let c = Greenlet::builder().name("c").spawn(|_| "c done").unwrap();
            assert_eq!(c.switch(()).take::<&str>(), "c done");
            *s.borrow_mut() = Some(c);
            let v = root().switch("p suspended").take::<i32>();
            ("p got", v)
        })
        .unwrap();
    assert_eq!(p.switch(()).take::<&str>(), "p suspended");
    let c = slot.borrow_mut().take().unwrap();
    assert!(c.is_dead());
    assert_eq!(c.parent(), Some(p.clone()));
    // p's body returns to the root, whose pending switch is this one.
    assert_eq!(c.switch(33).take::<(&str, i32)>(), ("p got", 33));
    assert!(p.is_dead());

    // Two dead levels: the value climbs past both to the root (the current greenlet).
    assert_eq!(c.switch(44).take::<i32>(), 44);
}

// ---------------------------------------------------------------------------------------------
// Rule 2: return values go to the parent
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_02_unstarted_parent_is_started_with_childs_return_value() {
    let p_ran_with = Rc::new(Cell::new(None));
    let r = p_ran_with.clone();
    let p = Greenlet::builder()
        .name("p")
        .spawn(move |v: Value| {
            let n = v.take::<i32>();
            r.set(Some(n));
            n * 2
        })
        .unwrap();
    let g = Greenlet::builder()
        .name("g")
        .parent(&p)
        .spawn(|_| 7)
        .unwrap();
    // g returns 7 to p (unstarted: its body starts with 7); p returns 14 to the root.
    assert_eq!(g.switch(()).take::<i32>(), 14);
    assert_eq!(p_ran_with.get(), Some(7));
    assert!(g.is_dead());
    assert!(p.is_dead());
}

#[test]
fn rule_02_dead_parent_passes_the_value_on() {
    let p = Greenlet::new(|_| ());
    p.switch(());
    assert!(p.is_dead());
    let g = Greenlet::builder().parent(&p).spawn(|_| 99_u64).unwrap();
    assert_eq!(g.switch(()).take::<u64>(), 99);
    assert!(g.is_dead());
}

#[test]
fn rule_02_suspended_parent_greenlet_resumes_with_the_value() {
    // The parent is not the root: its pending switch to the child returns the result.
    let outer = Greenlet::new(|_| {
        let inner = Greenlet::new(|v: Value| v.take::<i32>() + 1);
        let r = inner.switch(41).take::<i32>();
        r * 10
    });
    assert_eq!(outer.switch(()).take::<i32>(), 420);
}

// ---------------------------------------------------------------------------------------------
// Rule 3: panics go to the parent
// ---------------------------------------------------------------------------------------------

fn nested_then_fail(depth: u32, drops: &Rc<Cell<u32>>) {
    let _guard = DropCounter(drops.clone());
    if depth == 0 {
        fail(3)
    }
    nested_then_fail(depth - 1, drops);
}

#[test]
fn rule_03_panic_unwinds_every_drop_and_nothing_runs_twice() {
    let drops = Rc::new(Cell::new(0));
    let runs = Rc::new(Cell::new(0));
    let (d, r) = (drops.clone(), runs.clone());
    let g = Greenlet::new(move |_| {
        r.set(r.get() + 1);
        let _outer = DropCounter(d.clone());
        root().switch("suspended");
        nested_then_fail(2, &d);
    });
    assert_eq!(g.switch(()).take::<&str>(), "suspended");
    assert_eq!(drops.get(), 0);
    let p = expect_panic(|| g.switch(()));
    assert_eq!(my_error(p), MyError(3), "the same payload arrives");
    assert!(g.is_dead());
    assert_eq!(
        drops.get(),
        4,
        "every Drop on the panicking stack ran, once"
    );

    // The dead greenlet never runs again, and nothing is dropped twice.
    assert_eq!(g.switch(1).take::<i32>(), 1);
    assert_eq!(runs.get(), 1);
    assert_eq!(drops.get(), 4);
    drop(g);
    assert_eq!(drops.get(), 4);
}

#[test]
fn rule_03_panic_resumes_at_suspended_parent_greenlet() {
    let outer = Greenlet::new(|_| {
        let inner = Greenlet::new(|_| boom(31));
        match catch_unwind(AssertUnwindSafe(|| inner.switch(()))) {
            Err(p) => format!("outer caught {:?}", my_error(p)),
            Ok(_) => "outer saw no panic".to_string(),
        }
    });
    assert_eq!(
        outer.switch(()).take::<String>(),
        "outer caught MyError(31)"
    );
    assert!(outer.is_dead());
}

#[test]
fn rule_03_panic_into_unstarted_parent_skips_its_body() {
    let parent_ran = Rc::new(Cell::new(false));
    let pr = parent_ran.clone();
    let p = Greenlet::new(move |_| pr.set(true));
    let g = Greenlet::builder().parent(&p).spawn(|_| boom(32)).unwrap();
    let payload = expect_panic(|| g.switch(()));
    assert_eq!(my_error(payload), MyError(32));
    assert!(g.is_dead());
    assert!(p.is_dead(), "an unstarted parent dies with the panic");
    assert!(!parent_ran.get(), "the unstarted parent's body never runs");
}

// ---------------------------------------------------------------------------------------------
// Rule 4: throw
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_04_throw_into_current_raises_at_once() {
    // Like a switch to the current greenlet: nothing else runs, the panic is raised right here.
    let p = expect_panic(|| current().throw(MyError(45)));
    assert_eq!(my_error(p), MyError(45));
    let g = Greenlet::new(|_| {
        let r = catch_unwind(AssertUnwindSafe(|| current().throw(MyError(46))));
        r.map_err(my_error).map(|_| ())
    });
    assert_eq!(g.switch(()).take::<Result<(), MyError>>(), Err(MyError(46)));
}

#[test]
fn rule_04_throw_into_unstarted_never_runs_the_body() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |_| r.set(true));
    let p = expect_panic(|| g.throw(MyError(40)));
    assert_eq!(my_error(p), MyError(40));
    assert!(g.is_dead());
    assert!(!ran.get());
    // And it stays dead: a later switch goes to the parent (here, returns at once).
    assert_eq!(g.switch(3).take::<i32>(), 3);
    assert!(!ran.get());
}

#[test]
fn rule_04_throw_into_dead_goes_to_first_live_ancestor() {
    // To the root (the thrower itself): raised right here.
    let g = Greenlet::new(|_| ());
    g.switch(());
    let p = expect_panic(|| g.throw(MyError(41)));
    assert_eq!(my_error(p), MyError(41));

    // To a suspended ancestor that catches it.
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let s = slot.clone();
    let p = Greenlet::new(move |_| {
        let c = Greenlet::new(|_| ());
        c.switch(());
        *s.borrow_mut() = Some(c);
        match catch_unwind(AssertUnwindSafe(|| root().switch("p waits"))) {
            Err(payload) => format!("p caught {:?}", my_error(payload)),
            Ok(_) => "p saw no panic".to_string(),
        }
    });
    assert_eq!(p.switch(()).take::<&str>(), "p waits");
    let c = slot.borrow_mut().take().unwrap();
    assert!(c.is_dead());
    assert_eq!(
        c.throw(MyError(42)).take::<String>(),
        "p caught MyError(42)"
    );
    assert!(p.is_dead());
}

#[test]
fn rule_04_greenlet_catches_throws_and_goes_on() {
    let g = Greenlet::new(|_| {
        let mut caught = Vec::new();
        loop {
            match catch_unwind(AssertUnwindSafe(|| root().switch(caught.len()))) {
                Err(p) => caught.push(my_error(p).0),
                Ok(v) => {
                    if v.is::<()>() {
                        return caught;
                    }
                }
            }
        }
    });
    assert_eq!(g.switch(()).take::<usize>(), 0);
    assert_eq!(g.throw(MyError(1)).take::<usize>(), 1);
    assert_eq!(g.throw(MyError(2)).take::<usize>(), 2);
    assert!(g.is_active());
    assert_eq!(g.switch(()).take::<Vec<u32>>(), [1, 2]);
    assert!(g.is_dead());
}

#[test]
fn rule_04_throw_a_caught_payload_box_as_is() {
    // A payload caught with catch_unwind (a Box<dyn Any + Send>) is thrown as it is, not boxed
    // again.
    let g = Greenlet::new(|_| {
        let r = catch_unwind(AssertUnwindSafe(|| root().switch(())));
        match r {
            Err(p) => p.downcast_ref::<MyError>().copied(),
            Ok(_) => None,
        }
    });
    g.switch(());
    let payload = expect_panic(|| boom(43));
    assert_eq!(
        g.throw(payload).take::<Option<MyError>>(),
        Some(MyError(43))
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 5: GreenletExit
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_05_greenlet_exit_escaping_the_body_is_a_value() {
    let g = Greenlet::new(|_| exit_quietly());
    let v = catch_unwind(AssertUnwindSafe(|| g.switch(())))
        .expect("GreenletExit must arrive as a value, not a panic");
    assert!(v.is_greenlet_exit());
    assert!(g.is_dead());

    // Also from a grandchild's point of view: the parent greenlet receives it as a value.
    let outer = Greenlet::new(|_| {
        let inner = Greenlet::new(|_| {
            current().parent().expect("inner has a parent").switch(());
        });
        inner.switch(());
        let exit = inner.kill();
        (exit.is_greenlet_exit(), inner.is_dead())
    });
    assert_eq!(outer.switch(()).take::<(bool, bool)>(), (true, true));
}

#[test]
fn rule_05_kill_of_a_dead_greenlet_returns_exit_value() {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let g = Greenlet::new(move |_| {
        r.set(r.get() + 1);
        5
    });
    assert_eq!(g.switch(()).take::<i32>(), 5);
    let v = catch_unwind(AssertUnwindSafe(|| g.kill()))
        .expect("killing a dead greenlet must not panic");
    assert!(v.is_greenlet_exit());
    assert_eq!(runs.get(), 1);
}

#[test]
fn rule_05_kill_can_be_caught() {
    let g = Greenlet::new(|_| {
        let r = catch_unwind(AssertUnwindSafe(|| root().switch(())));
        let caught_exit = matches!(&r, Err(p) if p.is::<GreenletExit>());
        root().switch(if caught_exit { "survived" } else { "no exit" });
        "finished"
    });
    g.switch(());
    assert_eq!(g.kill().take::<&str>(), "survived");
    assert!(g.is_active());
    assert_eq!(g.switch(()).take::<&str>(), "finished");
}

#[test]
fn rule_05_kill_unstarted_greenlet_returns_exit_value() {
    // Python: `greenlet(f).throw()` on an unstarted greenlet: `f` never runs, the greenlet is
    // dead, and the GreenletExit is turned into a return value (g_handle_exit runs on the
    // pending exception), so the caller gets a GreenletExit value, not an exception.
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |_| r.set(true));
    let v = catch_unwind(AssertUnwindSafe(|| g.kill()));
    assert!(g.is_dead());
    assert!(!ran.get());
    let v = v.expect("kill of an unstarted greenlet must return GreenletExit as a value");
    assert!(v.is_greenlet_exit());
}

// ---------------------------------------------------------------------------------------------
// Rule 6: dropping the last handle
// ---------------------------------------------------------------------------------------------

/// The running greenlet's id and its parent's id.
type Whom = (u64, Option<u64>);

/// Records, when dropped, which greenlet is running and who its parent is.
struct WhoDrops {
    seen: Rc<Cell<Option<Whom>>>,
}

impl Drop for WhoDrops {
    fn drop(&mut self) {
        let cur = current();
        self.seen.set(Some((cur.id(), id_of(cur.parent()))));
    }
}

#[test]
fn rule_06_drop_suspended_unwinds_with_dropper_as_temporary_parent() {
    let seen = Rc::new(Cell::new(None));
    let captured_drops = Rc::new(Cell::new(0));
    let resumed_normally = Rc::new(Cell::new(false));
    let (s, rn) = (seen.clone(), resumed_normally.clone());
    let captured = DropCounter(captured_drops.clone());
    let g = Greenlet::builder()
        .name("victim")
        .spawn(move |_| {
            let _keep = &captured;
            let _on_stack = WhoDrops { seen: s.clone() };
            root().switch(());
            rn.set(true);
        })
        .unwrap();
    g.switch(());
    let g_id = g.id();
    assert_eq!(
        g.parent(),
        Some(root()),
        "the victim's own parent is the root"
    );

    let slot = Rc::new(RefCell::new(Some(g)));
    let trail: Trail = Rc::default();
    let (sl, t) = (slot.clone(), trail.clone());
    let dropper = Greenlet::builder()
        .name("dropper")
        .spawn(move |_| {
            let victim = sl.borrow_mut().take().unwrap();
            note(&t, "dropping");
            drop(victim);
            // Control comes back here, to the dropper, not to the victim's parent (the root).
            note(
                &t,
                format!(
                    "back in dropper, current is dropper: {}",
                    current().name() == Some("dropper")
                ),
            );
            "dropper finished"
        })
        .unwrap();
    let dropper_id = dropper.id();
    assert_eq!(dropper.switch(()).take::<&str>(), "dropper finished");
    assert_eq!(
        snapshot(&trail),
        ["dropping", "back in dropper, current is dropper: true"]
    );
    assert_eq!(
        seen.get(),
        Some((g_id, Some(dropper_id))),
        "the victim unwinds as current, with the dropper as its parent"
    );
    assert_eq!(
        captured_drops.get(),
        1,
        "the body's captures are freed with it"
    );
    assert!(
        !resumed_normally.get(),
        "a killed greenlet never resumes normally"
    );
}

#[test]
fn rule_06_drop_suspended_from_root_returns_to_root() {
    let drops = Rc::new(Cell::new(0));
    let captured_drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let captured = DropCounter(captured_drops.clone());
    let g = Greenlet::new(move |_| {
        let _keep = &captured;
        let _a = DropCounter(d.clone());
        let _b = DropCounter(d.clone());
        root().switch(());
    });
    g.switch(());
    let other = g.clone();
    drop(g);
    assert_eq!(drops.get(), 0, "not the last handle: nothing happens");
    assert!(other.is_active());
    drop(other);
    assert_eq!(drops.get(), 2, "every Drop on the stack ran");
    assert_eq!(captured_drops.get(), 1);
    assert!(current().is_root());
}

#[test]
fn rule_06_drop_unstarted_runs_no_user_code() {
    let ran = Rc::new(Cell::new(false));
    let injected = Rc::new(Cell::new(false));
    let captured_drops = Rc::new(Cell::new(0));
    let r = ran.clone();
    let captured = DropCounter(captured_drops.clone());
    let g = Greenlet::new(move |_| {
        let _keep = &captured;
        r.set(true);
    });
    let i = injected.clone();
    g.inject(move || i.set(true));
    drop(g);
    assert!(!ran.get());
    assert!(
        !injected.get(),
        "a pending inject never runs when the greenlet is freed"
    );
    assert_eq!(captured_drops.get(), 1, "the body's captures are freed");
}

#[test]
fn rule_06_drop_dead_runs_no_user_code() {
    let runs = Rc::new(Cell::new(0));
    let captured_drops = Rc::new(Cell::new(0));
    let r = runs.clone();
    let captured = DropCounter(captured_drops.clone());
    let g = Greenlet::new(move |_| {
        let _keep = &captured;
        r.set(r.get() + 1);
    });
    g.switch(());
    assert!(g.is_dead());
    assert_eq!(
        captured_drops.get(),
        0,
        "a dead greenlet keeps its body until freed"
    );
    drop(g);
    assert_eq!(runs.get(), 1);
    assert_eq!(
        captured_drops.get(),
        1,
        "the body's captures are freed with it"
    );
}

#[test]
fn rule_06_many_dropped_greenlets_free_their_captures() {
    // A coarse leak check: every captured Rc is released whatever state the greenlet died in.
    let token = Rc::new(());
    for i in 0..200 {
        let t = token.clone();
        let g = Greenlet::new(move |_| {
            let _t = &t;
            root().switch(());
        });
        match i % 3 {
            0 => {}
            1 => {
                g.switch(());
            }
            _ => {
                g.switch(());
                g.switch(());
            }
        }
    }
    assert_eq!(Rc::strong_count(&token), 1);
}

// ---------------------------------------------------------------------------------------------
// Rule 7: set_parent
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_07_set_parent_changes_where_results_go() {
    let p = Greenlet::new(|_| {
        let v = root().switch("p ready").take::<i32>();
        ("p got", v)
    });
    assert_eq!(p.switch(()).take::<&str>(), "p ready");
    let g = Greenlet::new(|_| 5);
    g.set_parent(&p).unwrap();
    assert_eq!(g.parent(), Some(p.clone()));
    // g returns 5 to p, which returns ("p got", 5) to the root.
    assert_eq!(g.switch(()).take::<(&str, i32)>(), ("p got", 5));
}

#[test]
fn rule_07_cycle_refused_parent_unchanged() {
    let a = Greenlet::new(|v| v);
    let b = Greenlet::builder().parent(&a).spawn(|v| v).unwrap();
    // a → root; b → a. Making a's parent b would close a cycle.
    assert_eq!(a.set_parent(&b), Err(Error::CyclicParent));
    assert_eq!(a.parent(), Some(root()));
    assert_eq!(b.parent(), Some(a.clone()));
    // The root is an ancestor of everything, but b may still move under the root.
    b.set_parent(&root()).unwrap();
    assert_eq!(b.parent(), Some(root()));
}

#[test]
fn rule_07_root_parent_cannot_be_set() {
    let g = Greenlet::new(|v| v);
    assert_eq!(root().set_parent(&g), Err(Error::RootParent));
    assert!(root().parent().is_none());
    assert_eq!(
        Error::RootParent.to_string(),
        "the root greenlet cannot have a parent"
    );
}

// ---------------------------------------------------------------------------------------------
// Rule 8: one root per thread
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_08_each_thread_has_its_own_root() {
    let here = root().id();
    let (there, there_child_parent_is_there) = std::thread::spawn(|| {
        let r = root();
        let g = Greenlet::new(|_| current().parent().map(|p| p.id()));
        let child_parent = g.switch(()).take::<Option<u64>>();
        (r.id(), child_parent == Some(r.id()))
    })
    .join()
    .unwrap();
    assert_ne!(here, there);
    assert!(there_child_parent_is_there);
    assert_eq!(root().id(), here);
}

// ---------------------------------------------------------------------------------------------
// Rule 9: inject
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_09_inject_on_suspended_runs_before_it_resumes() {
    let trail: Trail = Rc::default();
    let t = trail.clone();
    let g = Greenlet::new(move |_| {
        root().switch(());
        note(&t, "resumed");
    });
    g.switch(());
    let t = trail.clone();
    let gid = g.id();
    g.inject(move || note(&t, format!("inject as target: {}", current().id() == gid)));
    assert!(snapshot(&trail).is_empty());
    g.switch(());
    assert_eq!(snapshot(&trail), ["inject as target: true", "resumed"]);
}

#[test]
fn rule_09_inject_panic_is_raised_in_target_as_by_throw() {
    let g = Greenlet::new(
        |_| match catch_unwind(AssertUnwindSafe(|| root().switch(()))) {
            Err(p) => format!("caught {:?}", my_error(p)),
            Ok(_) => "resumed without panic".to_string(),
        },
    );
    g.switch(());
    g.inject(|| fail(9));
    assert_eq!(g.switch(()).take::<String>(), "caught MyError(9)");
    assert!(g.is_dead());
}

#[test]
fn rule_09_inject_panic_in_unstarted_never_runs_body() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = Greenlet::new(move |_| r.set(true));
    g.inject(|| fail(91));
    let p = expect_panic(|| g.switch(()));
    assert_eq!(my_error(p), MyError(91));
    assert!(!ran.get());
    assert!(g.is_dead());
}

#[test]
fn rule_09_two_injects_run_in_order() {
    let log: Log = Rc::default();
    // On a suspended greenlet.
    let l = log.clone();
    let g = Greenlet::new(move |_| {
        root().switch(());
        push(&l, 3);
    });
    g.switch(());
    let (l1, l2) = (log.clone(), log.clone());
    g.inject(move || push(&l1, 1));
    g.inject(move || push(&l2, 2));
    g.switch(());
    assert_eq!(*log.borrow(), [1, 2, 3]);

    // On an unstarted greenlet: before the body.
    log.borrow_mut().clear();
    let l = log.clone();
    let g = Greenlet::new(move |_| push(&l, 30));
    let (l1, l2) = (log.clone(), log.clone());
    g.inject(move || push(&l1, 10));
    g.inject(move || push(&l2, 20));
    g.switch(());
    assert_eq!(*log.borrow(), [10, 20, 30]);
}

#[test]
fn rule_09_inject_on_dead_runs_only_after_reset() {
    let log: Log = Rc::default();
    let l = log.clone();
    let g = Greenlet::new(move |_| push(&l, 2));
    g.switch(());
    assert!(g.is_dead());
    let l = log.clone();
    g.inject(move || push(&l, 1));
    g.switch(()); // goes to the parent (the root): returns at once
    assert_eq!(*log.borrow(), [2]);
    g.reset().unwrap();
    g.switch(());
    assert_eq!(*log.borrow(), [2, 1, 2]);
}

// ---------------------------------------------------------------------------------------------
// Rule 10: reset
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_10_reset_suspended_is_refused() {
    let g = Greenlet::new(|_| {
        let v = root().switch(()).take::<i32>();
        v + 1
    });
    g.switch(());
    assert_eq!(g.reset(), Err(Error::ResetActive));
    assert!(g.is_active());
    assert_eq!(
        g.switch(1).take::<i32>(),
        2,
        "a refused reset changes nothing"
    );
}

#[test]
fn rule_10_reset_running_is_refused() {
    let g = Greenlet::new(|_| current().reset());
    assert_eq!(
        g.switch(()).take::<Result<(), Error>>(),
        Err(Error::ResetActive)
    );
    assert!(g.is_dead());
}

#[test]
fn rule_10_reset_root_is_refused() {
    assert_eq!(root().reset(), Err(Error::ResetRoot));
    assert_eq!(
        Error::ResetRoot.to_string(),
        "cannot reset the root greenlet"
    );
}

#[test]
fn rule_10_reset_unstarted_does_nothing() {
    let g = Greenlet::new(|v| v);
    assert_eq!(g.reset(), Ok(()));
    assert!(!g.is_started());
    assert_eq!(g.switch(8).take::<i32>(), 8);
}

#[test]
fn rule_10_reset_after_panic_runs_again() {
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let g = Greenlet::new(move |_| {
        r.set(r.get() + 1);
        if r.get() == 1 {
            fail(10);
        }
        "second run"
    });
    assert_eq!(my_error(expect_panic(|| g.switch(()))), MyError(10));
    g.reset().unwrap();
    assert_eq!(g.switch(()).take::<&str>(), "second run");
    assert_eq!(runs.get(), 2);
}

// ---------------------------------------------------------------------------------------------
// Rule 12: tracing
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_12_settrace_returns_previous_and_gettrace_reports_it() {
    settrace(None);
    let t1 = Tracer::new(|_| {});
    let t2 = Tracer::new(|_| {});
    assert!(settrace(Some(t1.clone())).is_none());
    assert!(gettrace().expect("installed").same(&t1));
    let previous = settrace(Some(t2.clone())).expect("t1 was installed");
    assert!(previous.same(&t1));
    assert!(!previous.same(&t2));
    assert!(gettrace().expect("installed").same(&t2));
    let previous = settrace(None).expect("t2 was installed");
    assert!(previous.same(&t2));
    assert!(gettrace().is_none());
}

#[test]
fn rule_12_throw_is_traced_as_throw() {
    let g = Greenlet::builder()
        .name("g")
        .spawn(|_| {
            let _ = catch_unwind(AssertUnwindSafe(|| root().switch(())));
            "caught"
        })
        .unwrap();
    g.switch(());
    let (tracer, events) = recording_tracer();
    settrace(Some(tracer));
    let got = g.throw(MyError(12)).take::<&str>();
    let k = g.kill(); // dead: a GreenletExit value at once, no switch
    settrace(None);
    assert_eq!(got, "caught");
    assert!(k.is_greenlet_exit());
    assert_eq!(
        *events.borrow(),
        [ev("throw", "main", "g"), ev("switch", "g", "main")]
    );
}

#[test]
fn rule_12_panicking_tracer_is_removed_and_panic_raised_in_target() {
    let g = Greenlet::builder()
        .name("target")
        .spawn(|_| {
            let r = catch_unwind(AssertUnwindSafe(|| root().switch("waiting")));
            let what = match r {
                Err(p) => format!("target caught {:?}", my_error(p)),
                Ok(_) => "target resumed normally".to_string(),
            };
            (what, gettrace().is_none())
        })
        .unwrap();
    assert_eq!(g.switch(()).take::<&str>(), "waiting");
    let calls = Rc::new(Cell::new(0));
    let c = calls.clone();
    let previous = settrace(Some(Tracer::new(move |_| {
        c.set(c.get() + 1);
        fail(120);
    })));
    assert!(previous.is_none());
    let outcome = catch_unwind(AssertUnwindSafe(|| g.switch(())));
    settrace(None);
    let (what, removed_seen_in_target) = outcome
        .expect("the tracer's panic belongs to the target, which catches it")
        .take::<(String, bool)>();
    assert_eq!(what, "target caught MyError(120)");
    assert!(removed_seen_in_target, "the panicking tracer is removed");
    assert_eq!(calls.get(), 1, "removed after its first panic");
    assert!(gettrace().is_none());
}

// ---------------------------------------------------------------------------------------------
// Rule 13: values
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_13_wrong_type_gives_the_value_back() {
    let g = Greenlet::new(|_| 5_i32);
    let v = g.switch(());
    let v = v.downcast::<String>().expect_err("an i32 is not a String");
    assert!(v.is::<i32>());
    let v = v.downcast::<u32>().expect_err("an i32 is not a u32");
    assert_eq!(v.take::<i32>(), 5);
}

#[test]
fn rule_13_take_wrong_type_panics_naming_both_types() {
    let p = expect_panic(|| Value::new("x").take::<i32>());
    let msg = p.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        msg.contains("&str") && msg.contains("i32"),
        "message: {msg:?}"
    );
}

#[test]
fn rule_13_integer_literal_round_trips() {
    let g = Greenlet::new(|v| v);
    assert_eq!(g.switch(5).take::<i32>(), 5);
    let echo = Greenlet::new(|v: Value| v.summary());
    assert_eq!(echo.switch(5).take::<String>(), "5");
}

#[derive(Debug, Clone, PartialEq)]
struct Big {
    words: [u64; 8],
    text: String,
    list: Vec<u32>,
}

#[test]
fn rule_13_large_values_round_trip() {
    let big = Big {
        words: [1, 2, 3, 4, 5, 6, 7, u64::MAX],
        text: "more than sixteen bytes".repeat(3),
        list: (0..100).collect(),
    };
    assert!(std::mem::size_of::<Big>() > 16);
    let sent = big.clone();
    let g = Greenlet::new(move |v: Value| {
        let got = v.take::<Big>();
        let ok = got == sent;
        let back = root().switch((ok, [9u64; 4])).take::<[u64; 16]>();
        let mut reply = got;
        reply.words[0] = back.iter().sum();
        reply
    });
    let (ok, arr) = g.switch(big.clone()).take::<(bool, [u64; 4])>();
    assert!(ok, "the greenlet received the big value intact");
    assert_eq!(arr, [9; 4]);
    let reply = g.switch([2u64; 16]).take::<Big>();
    assert_eq!(reply.words[0], 32);
    assert_eq!(reply.words[1..], big.words[1..]);
    assert_eq!(reply.text, big.text);
    assert_eq!(reply.list, big.list);
}

#[test]
fn rule_13_values_are_dropped_exactly_once_across_switches() {
    let token = Rc::new(());
    let t = token.clone();
    let g = Greenlet::new(move |v: Value| {
        let got = v.take::<Rc<()>>();
        let _ = root().switch(got.clone());
        drop(got);
        let _ = &t;
    });
    let back = g.switch(token.clone()).take::<Rc<()>>();
    assert_eq!(Rc::strong_count(&token), 4); // token, captured t, greenlet's got, back
    drop(back);
    g.switch(());
    drop(g);
    assert_eq!(Rc::strong_count(&token), 1);
}

// ---------------------------------------------------------------------------------------------
// Builder and handle queries
// ---------------------------------------------------------------------------------------------

#[test]
fn builder_rejects_too_small_stack() {
    let err = Greenlet::builder()
        .stack_size(1024)
        .spawn(|v| v)
        .unwrap_err();
    assert_eq!(
        err,
        Error::InvalidStackSize {
            requested: 1024,
            min: MIN_STACK_SIZE,
            max: MAX_STACK_SIZE
        }
    );
    assert!(matches!(
        Greenlet::builder()
            .stack_size(MAX_STACK_SIZE + 1)
            .spawn(|v| v),
        Err(Error::InvalidStackSize { .. })
    ));
}

#[test]
fn builder_rounds_stack_size_up() {
    let g = Greenlet::builder()
        .stack_size(MIN_STACK_SIZE + 1)
        .spawn(|v| v)
        .unwrap();
    assert!(g.stack_size() > MIN_STACK_SIZE);
    assert_eq!(root().stack_size(), 0);
    let d = Greenlet::new(|v| v);
    assert_eq!(d.stack_size(), greenlet::DEFAULT_STACK_SIZE);
}

#[test]
fn is_current_and_is_root() {
    let g = Greenlet::new(|_| {
        let me = current();
        (
            me.is_current(),
            me.is_root(),
            root().is_current(),
            root().is_root(),
        )
    });
    assert!(!g.is_current());
    assert!(!g.is_root());
    assert_eq!(
        g.switch(()).take::<(bool, bool, bool, bool)>(),
        (true, false, false, true)
    );
    assert!(root().is_current());
}

#[test]
fn parent_of_greenlet_created_in_greenlet() {
    let outer = Greenlet::builder()
        .name("outer")
        .spawn(|_| {
            let inner = Greenlet::new(|_| ());
            let inner_parent = id_of(inner.parent());
            let outer_parent = id_of(current().parent());
            (current().id(), inner_parent, outer_parent)
        })
        .unwrap();
    let (outer_id, inner_parent, outer_parent) =
        outer.switch(()).take::<(u64, Option<u64>, Option<u64>)>();
    assert_eq!(outer_id, outer.id());
    assert_eq!(inner_parent, Some(outer.id()));
    assert_eq!(outer_parent, Some(root().id()));
}

#[test]
fn ids_are_unique() {
    let mut ids = HashSet::new();
    assert!(ids.insert(root().id()));
    let gs: Vec<Greenlet> = (0..100).map(|_| Greenlet::new(|v| v)).collect();
    for g in &gs {
        assert!(ids.insert(g.id()), "duplicate id {}", g.id());
        assert_eq!(g.clone().id(), g.id(), "clones are the same greenlet");
    }
    let other_thread_root = std::thread::spawn(|| root().id()).join().unwrap();
    assert!(ids.insert(other_thread_root));
}

#[test]
fn names() {
    let named = Greenlet::builder().name("worker").spawn(|v| v).unwrap();
    assert_eq!(named.name(), Some("worker"));
    let unnamed = Greenlet::new(|v| v);
    assert_eq!(unnamed.name(), None);
    assert_eq!(root().name(), Some("main"));
    let dbg = format!("{named:?}");
    assert!(dbg.contains("worker") && dbg.contains("unstarted"), "{dbg}");
}

#[test]
fn handles_compare_by_identity() {
    let a = Greenlet::new(|v| v);
    let b = Greenlet::new(|v| v);
    assert_eq!(a, a.clone());
    assert_ne!(a, b);
    let set: HashSet<Greenlet> = [a.clone(), a.clone(), b.clone()].into_iter().collect();
    assert_eq!(set.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Combinations of the rules
// ---------------------------------------------------------------------------------------------

#[test]
fn rule_02_result_goes_to_parent_not_to_switcher() {
    // g1 and g2 are children of the root. g1 switches to g2; when g2 returns, its result goes to
    // its parent (the root), whose pending switch is the one into g1.
    let g2 = Greenlet::builder().name("g2").spawn(|_| "from g2").unwrap();
    let g2c = g2.clone();
    let g1_resumed = Rc::new(Cell::new(false));
    let r = g1_resumed.clone();
    let g1 = Greenlet::builder()
        .name("g1")
        .spawn(move |_| {
            g2c.switch(());
            r.set(true);
        })
        .unwrap();
    assert_eq!(g1.switch(()).take::<&str>(), "from g2");
    assert!(g2.is_dead());
    assert!(g1.is_active(), "g1 stays suspended in its switch to g2");
    assert!(!g1_resumed.get());
}

#[test]
fn rule_03_panic_climbs_two_levels_unwinding_each() {
    let drops = Rc::new(Cell::new(0));
    let d = drops.clone();
    let outer = Greenlet::new(move |_| {
        let _outer_guard = DropCounter(d.clone());
        let d2 = d.clone();
        let inner = Greenlet::new(move |_| {
            let _inner_guard = DropCounter(d2.clone());
            boom(33)
        });
        inner.switch(());
        "outer was not unwound"
    });
    let p = expect_panic(|| outer.switch(()));
    assert_eq!(my_error(p), MyError(33));
    assert!(outer.is_dead());
    assert_eq!(drops.get(), 2, "both stacks unwound");
}

#[test]
fn rule_04_uncaught_throw_goes_to_parent_not_thrower() {
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let s = slot.clone();
    let p = Greenlet::new(move |_| {
        let c = Greenlet::new(|_| {
            root().switch("c waits");
        });
        *s.borrow_mut() = Some(c.clone());
        match catch_unwind(AssertUnwindSafe(|| c.switch(()))) {
            Err(payload) => format!("p caught {:?}", my_error(payload)),
            Ok(v) => format!("p got value {v:?}"),
        }
    });
    assert_eq!(p.switch(()).take::<&str>(), "c waits");
    let c = slot.borrow_mut().take().unwrap();
    // c does not catch: it dies and the panic goes to its parent p, which returns to the root.
    assert_eq!(
        c.throw(MyError(44)).take::<String>(),
        "p caught MyError(44)"
    );
    assert!(c.is_dead());
    assert!(p.is_dead());
}

#[test]
fn rule_06_nested_kill_during_unwind() {
    // outer's stack holds the only handle to inner (a suspended child of the root). Dropping
    // outer kills it; its unwinding drops inner's handle, which kills inner in turn, with outer
    // as inner's temporary parent; then outer finishes dying and control returns here.
    let trail: Trail = Rc::default();
    let t = trail.clone();
    let outer = Greenlet::builder()
        .name("outer")
        .spawn(move |_| {
            let t2 = t.clone();
            let inner = Greenlet::builder()
                .name("inner")
                .parent(&root())
                .spawn(move |_| {
                    let _r = Recorder {
                        trail: t2.clone(),
                        what: "inner unwound",
                    };
                    root().switch("inner waits");
                    note(&t2, "inner resumed normally");
                })
                .unwrap();
            inner.switch(());
            let _r = Recorder {
                trail: t.clone(),
                what: "outer unwound",
            };
            root().switch("outer waits");
            note(&t, "outer resumed normally");
        })
        .unwrap();
    assert_eq!(outer.switch(()).take::<&str>(), "inner waits");
    assert_eq!(outer.switch(()).take::<&str>(), "outer waits");
    drop(outer);
    assert_eq!(snapshot(&trail), ["outer unwound", "inner unwound"]);
    assert!(current().is_root());
}

#[test]
fn rule_06_last_handle_kills_even_when_a_child_links_to_it() {
    // Rule 6 counts handles, not parent links: dropping g's last handle kills g although its
    // child c still names it as parent (otherwise a greenlet holding its own child in a local
    // would never be reclaimed). c can still reach g, now dead, and c's result climbs past it.
    let trail: Trail = Rc::default();
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let (t, s) = (trail.clone(), slot.clone());
    let g = Greenlet::builder()
        .name("g")
        .spawn(move |_| {
            let t2 = t.clone();
            let c = Greenlet::builder()
                .name("c")
                .spawn(move |_| {
                    let _r = Recorder {
                        trail: t2.clone(),
                        what: "c unwound",
                    };
                    root().switch("c waits");
                    "c done"
                })
                .unwrap();
            *s.borrow_mut() = Some(c.clone());
            drop(c);
            let _r = Recorder {
                trail: t.clone(),
                what: "g unwound",
            };
            root().switch("g waits");
        })
        .unwrap();
    assert_eq!(g.switch(()).take::<&str>(), "g waits");
    let c = slot.borrow_mut().take().unwrap();
    assert_eq!(c.switch(()).take::<&str>(), "c waits");
    assert_eq!(c.parent(), Some(g.clone()));
    drop(g);
    assert_eq!(snapshot(&trail), ["g unwound"], "the last handle killed g");
    let parent = c.parent().expect("the link keeps g reachable");
    assert!(parent.is_dead());
    assert_eq!(parent.name(), Some("g"));
    drop(parent);
    // c's result goes to its first live ancestor: the root, which created g.
    assert_eq!(c.switch(()).take::<&str>(), "c done");
    assert_eq!(snapshot(&trail), ["g unwound", "c unwound"]);
}

#[test]
fn rule_06_drop_suspended_greenlet_that_holds_its_own_child() {
    // A common pattern: a greenlet keeps a helper child greenlet in a local. The child's parent
    // link points back at it. Dropping the last handle must still kill the suspended greenlet
    // (its Drops run) and free both (rule 6: "No memory is leaked").
    let trail: Trail = Rc::default();
    let token = Rc::new(());
    let (t, tok) = (trail.clone(), token.clone());
    let outer = Greenlet::new(move |_| {
        let _tok = &tok;
        let helper = Greenlet::new(|v| v);
        let _r = Recorder {
            trail: t.clone(),
            what: "outer unwound",
        };
        root().switch(());
        drop(helper);
    });
    outer.switch(());
    drop(outer); // the last handle
    assert_eq!(snapshot(&trail), ["outer unwound"]);
    assert_eq!(Rc::strong_count(&token), 1, "outer's body is freed");
}

#[test]
fn many_switches_between_three_greenlets() {
    // A ring a → b → c → a, each adding its share, for many rounds.
    let total = Rc::new(Cell::new(0u64));
    let slots: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
    let make = |share: u64| {
        let (total, slots) = (total.clone(), slots.clone());
        move |first: Value| {
            let me = first.take::<usize>();
            for _ in 0..10_000 {
                total.set(total.get() + share);
                let next = slots.borrow()[(me + 1) % 3].clone();
                next.switch(me + 1);
            }
        }
    };
    let a = Greenlet::new(make(1));
    let b = Greenlet::new(make(10));
    let c = Greenlet::new(make(100));
    slots.borrow_mut().extend([a.clone(), b.clone(), c.clone()]);
    a.switch(0_usize);
    // a's last switch is answered by c's last; a then returns to its parent, the root, while b
    // and c stay suspended in their last switches.
    assert!(a.is_dead());
    assert!(b.is_active() && c.is_active());
    assert_eq!(total.get(), 10_000 * 111);
    slots.borrow_mut().clear();
}

#[test]
fn rule_06_dropping_a_long_parent_chain_does_not_recurse() {
    // Each greenlet's parent link is released when it is freed, which may free the parent in
    // turn; that must be a loop, not one stack frame per ancestor (Python's "trashcan").
    let mut last = Greenlet::builder()
        .stack_size(16 * 1024)
        .spawn(|v| v)
        .unwrap();
    for _ in 0..20_000 {
        last = Greenlet::builder()
            .stack_size(16 * 1024)
            .parent(&last)
            .spawn(|v| v)
            .unwrap();
    }
    let depth = std::iter::successors(Some(last.clone()), |g| g.parent()).count();
    assert_eq!(depth, 20_002, "20,001 greenlets and the root");
    drop(last); // frees all 20,001 in one loop
}

/// Rule 6 for a greenlet that runs with no handle at all.
///
/// `p` loses its last handle while unstarted; a child's parent link keeps it (rightly) from
/// being freed. When the child dies, its result starts `p` (rule 2), which then switches to
/// the root: `p` is now suspended with no handle, so the root must kill it right there, as it
/// does for a greenlet that dropped its own last handle while running.
///
/// Found by `tests/model.rs` (a regression of the switch fast path, since fixed: a greenlet that
/// gets control with no handle leaves the pending flag up for whoever it next switches to).
#[test]
fn rule_06_greenlet_started_without_handles_is_killed_when_it_switches_away() {
    let log: Rc<RefCell<Vec<&str>>> = Rc::default();
    let l = log.clone();
    let child = Greenlet::new(|_| ());
    let p = Greenlet::new(move |_: Value| {
        l.borrow_mut().push("p started");
        let r = catch_unwind(AssertUnwindSafe(|| root().switch("p yields")));
        l.borrow_mut()
            .push(if r.is_err() { "p killed" } else { "p resumed" });
    });
    child.set_parent(&p).unwrap();
    drop(p); // unstarted, no handle left; child's link keeps it
    let got = child.switch(()); // child returns into p, which starts and yields to the root
    assert_eq!(got.downcast::<&str>().ok(), Some("p yields"));
    assert_eq!(
        *log.borrow(),
        ["p started", "p killed"],
        "p, suspended with no handle, is killed as soon as it has switched away"
    );
}

/// Rule 9 meets rule 6: a greenlet injects a function into itself, drops its own last handle
/// and switches away; the greenlet it switches to kills it right there (rule 6), and the
/// injected function still runs first, right before the greenlet resumes into its kill. (Found
/// by `tests/model.rs`: the kill's switch used to miss the pending injection.)
#[test]
fn rule_09_inject_runs_before_a_kill_on_drop_resumes_the_greenlet() {
    let log: Log = Rc::default();
    let slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let (l, s) = (log.clone(), slot.clone());
    let x = Greenlet::new(move |_| {
        let me = s.borrow_mut().take().expect("the only handle");
        let l1 = l.clone();
        me.inject(move || push(&l1, 1));
        drop(me); // x runs with no handle now
        let r = catch_unwind(AssertUnwindSafe(|| root().switch(())));
        push(&l, if r.is_err() { 2 } else { 3 });
        if let Err(p) = r {
            std::panic::resume_unwind(p);
        }
    });
    // x is started by its child's result, so the root never holds a handle while x runs.
    let child = Greenlet::builder().parent(&x).spawn(|_| ()).unwrap();
    *slot.borrow_mut() = Some(x);
    // The root gets what x switched to it; by then the root has already killed x (its kill
    // ran before the root's switch returned).
    let got = child.switch(());
    assert!(got.is::<()>(), "{got:?}");
    assert_eq!(
        *log.borrow(),
        [1, 2],
        "the injection ran, then the kill unwound x"
    );
}
