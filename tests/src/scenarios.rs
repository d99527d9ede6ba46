//! The scenario library: every numbered case of `semantics.md`, the rules' sub-points that
//! touch the platform layer, and the engine's examples, each written once and compiled twice
//! (natively, linked into the harness; for wasm32, into `tests/guest`).
//!
//! A scenario reports what happens as a list of events (strings): values received, states,
//! errors, drops, panics caught, and, in the traced mode, every switch and throw the engine's
//! tracer sees. The harness runs each scenario on both targets and requires the two event lists
//! to be identical. Scenarios also assert the results `semantics.md` promises, so a wrong
//! answer common to both targets fails too (natively as a panic, in wasm as a trap).
//!
//! Events name greenlets by name, never by id: ids are process-wide counters, which differ
//! between a native test binary (tests run in parallel) and a guest.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;

use greenlet::{
    Error, Event, Greenlet, GreenletExit, Tracer, Value, current, gettrace, root, settrace,
};

/// What a scenario needs from the platform beyond switching stacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Switching only: runs on every target.
    Switching,
    /// Unwinding (`panic=unwind`): panics, `throw`, `kill`, killing on drop.
    Unwinding,
    /// More than one thread.
    Threads,
}

impl Needs {
    /// Why a target without this capability cannot run the scenario.
    pub fn reason(self) -> &'static str {
        match self {
            Needs::Switching => "",
            Needs::Unwinding => {
                "needs unwinding: wasm32-unknown-unknown aborts on panic (see README, WebAssembly)"
            }
            Needs::Threads => "needs threads: wasm32-unknown-unknown has one thread",
        }
    }
}

/// One scenario.
pub struct Scenario {
    pub name: &'static str,
    pub needs: Needs,
    run: fn(),
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

thread_local! {
    static LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Records an event.
pub fn ev(s: impl Into<String>) {
    let s = s.into();
    LOG.with(|l| l.borrow_mut().push(s));
}

/// A greenlet's name as events show it.
fn name(g: &Greenlet) -> String {
    g.name().unwrap_or("<unnamed>").to_owned()
}

/// A value as events show it (its type's name when it is not a common printable type).
fn show(v: &Value) -> String {
    format!("{v:?}")
}

/// The states `semantics.md` defines, as one word.
fn state(g: &Greenlet) -> &'static str {
    match (g.is_started(), g.is_dead(), g.is_current()) {
        (_, true, _) => "dead",
        (_, _, true) => "running",
        (true, false, false) => "suspended",
        (false, false, false) => "unstarted",
    }
}

fn ev_state(g: &Greenlet) {
    ev(format!("{} is {}", name(g), state(g)));
}

/// A named greenlet.
fn spawn<R: 'static>(n: &str, body: impl FnMut(Value) -> R + 'static) -> Greenlet {
    Greenlet::builder()
        .name(n)
        .spawn(body)
        .expect("spawn a greenlet")
}

/// A named greenlet with a parent.
fn spawn_under<R: 'static>(
    n: &str,
    parent: &Greenlet,
    body: impl FnMut(Value) -> R + 'static,
) -> Greenlet {
    Greenlet::builder()
        .name(n)
        .parent(parent)
        .spawn(body)
        .expect("spawn a greenlet")
}

/// The panic payload scenarios throw and raise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boom(pub u32);

fn payload(p: &(dyn Any + Send)) -> String {
    if let Some(b) = p.downcast_ref::<Boom>() {
        format!("Boom({})", b.0)
    } else if p.is::<GreenletExit>() {
        "GreenletExit".into()
    } else if let Some(s) = p.downcast_ref::<&str>() {
        format!("{s:?}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("{s:?}")
    } else {
        "<other payload>".into()
    }
}

/// Runs `f`, recording its value or the panic it raised.
fn attempt(what: &str, f: impl FnOnce() -> Value) {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => ev(format!("{what} -> {}", show(&v))),
        Err(p) => ev(format!("{what} panicked with {}", payload(&*p))),
    }
}

fn boom(n: u32) -> ! {
    std::panic::panic_any(Boom(n))
}

/// Records its drop.
struct Noisy(&'static str);

impl Drop for Noisy {
    fn drop(&mut self) {
        ev(format!("drop {}", self.0));
    }
}

// ---------------------------------------------------------------------------------------------
// The numbered cases of semantics.md
// ---------------------------------------------------------------------------------------------

fn case_01_switch_order() {
    let log: Rc<RefCell<Vec<i32>>> = Rc::default();
    let l = log.clone();
    let g = spawn("g", move |_| {
        l.borrow_mut().push(1);
        root().switch(());
        l.borrow_mut().push(3);
    });
    log.borrow_mut().push(0);
    g.switch(());
    log.borrow_mut().push(2);
    g.switch(());
    log.borrow_mut().push(4);
    ev(format!("{:?}", log.borrow()));
    assert_eq!(*log.borrow(), [0, 1, 2, 3, 4]);
    ev_state(&g);
}

fn case_02_two_greenlets_one_body() {
    let log: Rc<RefCell<Vec<i32>>> = Rc::default();
    let body = |log: Rc<RefCell<Vec<i32>>>| {
        move |_: Value| {
            log.borrow_mut().push(1);
            current().parent().expect("parent").switch(());
            log.borrow_mut().push(1);
            log.borrow_mut().push(1);
        }
    };
    let g = spawn("g", body(log.clone()));
    let h = spawn("h", body(log.clone()));
    let len = || log.borrow().len();
    g.switch(());
    ev(format!("after g: {}", len()));
    h.switch(());
    ev(format!("after h: {}", len()));
    h.switch(());
    ev(format!("after h again: {}", len()));
    ev_state(&h);
    g.switch(());
    ev(format!("after g again: {}", len()));
    ev_state(&g);
    assert_eq!(len(), 6);
    assert!(g.is_dead() && h.is_dead());
}

fn case_03_parent_is_creator() {
    let a = spawn("a", |_| {
        let child = spawn("child", |_| {
            ev(format!(
                "child's parent: {}",
                name(&current().parent().unwrap())
            ));
            "from child"
        });
        let v = child.switch(());
        ev(format!("a resumed with {}", show(&v)));
        ev_state(&child);
        "a done"
    });
    ev(format!("main got {}", show(&a.switch(()))));
}

fn case_04_first_switch_is_argument() {
    let g = spawn("g", |v: Value| {
        ev(format!("body argument {}", show(&v)));
        v.take::<i32>() * 2
    });
    let r = g.switch(21_i32);
    ev(format!("result {}", show(&r)));
    assert_eq!(r.take::<i32>(), 42);
}

fn case_05_return_goes_to_parent() {
    let g = spawn("g", |_| 5_u64);
    let v = g.switch(());
    ev(format!("switch returned {}", show(&v)));
    assert_eq!(v.take::<u64>(), 5);
}

fn case_06_switch_to_dead_returns_at_once() {
    let g = spawn("g", |_| ());
    g.switch(());
    ev_state(&g);
    let v = g.switch(25_i32);
    ev(format!("switch to dead -> {}", show(&v)));
    assert_eq!(v.take::<i32>(), 25);
}

fn case_07_root() {
    let r = root();
    ev(format!("current is root: {}", current() == r));
    ev(format!("root name: {}", name(&r)));
    ev(format!("root parent: {:?}", r.parent().map(|p| name(&p))));
    ev(format!("root is_root: {}", r.is_root()));
    assert!(current() == r && r.parent().is_none());
}

fn case_08_states() {
    let g = spawn("g", |_| {
        root().switch(());
    });
    let flags = |g: &Greenlet| {
        format!(
            "{}: started {} active {} dead {}",
            state(g),
            g.is_started(),
            g.is_active(),
            g.is_dead()
        )
    };
    ev(flags(&g));
    g.switch(());
    ev(flags(&g));
    g.switch(());
    ev(flags(&g));
}

fn case_09_panic_goes_to_parent() {
    let g = spawn("g", |_| {
        let _guard = Noisy("g's local");
        boom(9)
    });
    attempt("g.switch", || g.switch(()));
    ev_state(&g);
}

fn case_10_throw_caught() {
    let g = spawn("g", |_| {
        match catch_unwind(AssertUnwindSafe(|| root().switch(()))) {
            Err(p) => {
                ev(format!("g caught {}", payload(&*p)));
                root().switch("ok")
            }
            Ok(_) => root().switch("no panic"),
        };
    });
    g.switch(());
    attempt("g.throw", || g.throw(Boom(10)));
    ev_state(&g);
}

fn case_11_kill() {
    let g = spawn("g", |_| {
        let _guard = Noisy("g's local");
        root().switch(());
        ev("g went on after the kill");
    });
    g.switch(());
    let v = g.kill();
    ev(format!(
        "kill -> {} (exit: {})",
        show(&v),
        v.is_greenlet_exit()
    ));
    ev_state(&g);
    let again = g.kill();
    ev(format!("kill again -> {}", show(&again)));
}

fn case_12_throw_into_unstarted_chain() {
    let g1 = spawn("g1", |_| ev("g1 ran"));
    let g2 = spawn_under("g2", &g1, |_| ev("g2 ran"));
    attempt("g2.throw", || g2.throw(Boom(12)));
    ev_state(&g1);
    ev_state(&g2);
}

fn case_13_drop_kills_suspended() {
    let g = spawn("g", |_| {
        let _on_stack = Noisy("value on g's stack");
        root().switch(());
        ev("g resumed normally");
    });
    g.switch(());
    ev("dropping g");
    drop(g);
    ev("dropped g");
}

fn case_14_cycles_refused() {
    let g = spawn("g", |v| v);
    let e = g.set_parent(&g).unwrap_err();
    ev(format!("g.set_parent(g): {e}"));
    assert_eq!(e, Error::CyclicParent);
    let g1 = spawn("g1", |v| v);
    let g2 = spawn_under("g2", &g1, |v| v);
    let g3 = spawn_under("g3", &g2, |v| v);
    ev(format!("g3.set_parent(g1): {:?}", g3.set_parent(&g1)));
    ev(format!(
        "g1.set_parent(g3): {}",
        g1.set_parent(&g3).unwrap_err()
    ));
    ev(format!("g1's parent: {}", name(&g1.parent().unwrap())));
    ev(format!(
        "root().set_parent(g): {}",
        root().set_parent(&g).unwrap_err()
    ));
}

fn case_15_threads() {
    let results: Vec<String> = (0..10)
        .map(|_| {
            std::thread::spawn(|| {
                let log: Rc<RefCell<Vec<i32>>> = Rc::default();
                let l = log.clone();
                let g = spawn("g", move |_| {
                    l.borrow_mut().push(1);
                    root().switch(());
                    l.borrow_mut().push(3);
                });
                log.borrow_mut().push(0);
                g.switch(());
                log.borrow_mut().push(2);
                g.switch(());
                log.borrow_mut().push(4);
                format!("{:?}", log.borrow())
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();
    for r in &results {
        ev(r.clone());
    }
    assert!(results.iter().all(|r| r == "[0, 1, 2, 3, 4]"));
}

fn case_16_tracer() {
    let g1 = spawn("g1", |_| 1);
    let g2 = spawn("g2", |_| -> i32 { boom(16) });
    let seen: Rc<RefCell<Vec<String>>> = Rc::default();
    let s = seen.clone();
    let previous = settrace(Some(Tracer::new(move |e| s.borrow_mut().push(describe(e)))));
    g1.switch(());
    attempt("g2.switch", || g2.switch(()));
    let mine = settrace(previous);
    ev(format!("settrace gave back ours: {}", mine.is_some()));
    for e in seen.borrow().iter() {
        ev(format!("tracer saw {e}"));
    }
    assert_eq!(
        *seen.borrow(),
        [
            "switch main->g1",
            "switch g1->main",
            "switch main->g2",
            "throw g2->main"
        ]
    );
}

fn case_17_inject() {
    let g = spawn("g", |_| {
        let a = root().switch(());
        ev(format!("g resumed with {}", show(&a)));
        let b = root().switch(());
        ev(format!("g resumed with {}", show(&b)));
    });
    g.switch(());
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    g.inject(move || {
        r.set(r.get() + 1);
        ev(format!("injected runs in {}", name(&current())));
    });
    ev("switching with 'a'");
    g.switch("a");
    ev("switching with 'b'");
    g.switch("b");
    ev(format!("injected ran {} time(s)", runs.get()));
    assert_eq!(runs.get(), 1);
}

fn case_18_reset() {
    let g = spawn("g", |v: Value| {
        let n = v.take::<i32>();
        ev(format!("start {n}"));
        root().switch(());
        ev(format!("end {n}"));
        n
    });
    g.switch(1);
    ev(format!("result {}", show(&g.switch(()))));
    ev_state(&g);
    ev(format!("reset: {:?}", g.reset()));
    ev_state(&g);
    g.switch(2);
    ev(format!("result {}", show(&g.switch(()))));
    ev_state(&g);
}

/// A frame of about 10 KiB (on the shadow stack, in wasm) that recurses `depth - 1` times.
#[inline(never)]
fn deep_frames(depth: usize) -> usize {
    let mut frame = [0u8; 10240];
    frame[0] = depth as u8;
    frame[10239] = 1;
    let frame = std::hint::black_box(&mut frame);
    if depth <= 1 {
        return frame[10239] as usize;
    }
    deep_frames(depth - 1) + frame[10239] as usize + (frame[0] as usize - depth)
}

fn case_19_recursion_within_stack_size() {
    // The overflow half (the guard page and its message) is native only: wasm32 shadow stacks
    // have no guard (see engine/src/stack_wasm32.rs); natively, engine/tests/overflow.rs.
    let g = Greenlet::builder()
        .name("deep")
        .stack_size(256 << 10)
        .spawn(|v: Value| deep_frames(v.take::<usize>()))
        .expect("spawn");
    ev(format!("stack size {}", g.stack_size()));
    let r = g.switch(20_usize);
    ev(format!("20 frames of 10 KiB -> {}", show(&r)));
    assert_eq!(r.take::<usize>(), 20);
}

/// A generator on greenlets (Python greenlet's `genlet`).
struct Counting(Greenlet);

impl Counting {
    fn new(n: i32) -> Counting {
        Counting(spawn("gen", move |_| {
            for i in 0..n {
                current().parent().expect("yield").switch(i);
            }
        }))
    }
}

impl Iterator for Counting {
    type Item = i32;
    fn next(&mut self) -> Option<i32> {
        if self.0.is_dead() {
            return None;
        }
        self.0.set_parent(&current()).expect("parent");
        let v = self.0.switch(());
        if self.0.is_dead() {
            None
        } else {
            Some(v.take())
        }
    }
}

fn case_20_generator() {
    let mut seen = Vec::new();
    for _ in 0..3 {
        for i in Counting::new(5) {
            seen.push(i);
            seen.push(i);
        }
    }
    ev(format!("{seen:?}"));
    let once = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4];
    assert!(seen.iter().eq(once.iter().cycle().take(30)));
}

// ---------------------------------------------------------------------------------------------
// Rules' sub-points that exercise the platform layer differently
// ---------------------------------------------------------------------------------------------

fn rule_01_switch_to_current() {
    ev(format!("root().switch(5) -> {}", show(&root().switch(5))));
    let g = spawn("g", |_| {
        let v = current().switch(7);
        ev(format!("g: current().switch(7) -> {}", show(&v)));
        "done"
    });
    ev(format!("g -> {}", show(&g.switch(()))));
}

fn rule_01_dead_goes_to_first_live_ancestor() {
    // g1 (suspended) ← g2 (dies) ← g3 (dies): switching to g3 reaches g1.
    let g1 = spawn("g1", |_| {
        let g2 = spawn("g2", |_| {
            let g3 = spawn("g3", |_| "g3 done");
            ev(format!("g2 got {}", show(&g3.switch(()))));
            let v = g3.switch("to dead g3");
            ev(format!("g2: switch to dead g3 -> {}", show(&v)));
            "g2 done"
        });
        ev(format!("g1 got {}", show(&g2.switch(()))));
        let v = root().switch(g2);
        ev(format!("g1 resumed with {}", show(&v)));
        "g1 done"
    });
    let g2 = g1.switch(()).take::<Greenlet>();
    ev_state(&g2);
    let v = g2.switch("via dead g2");
    ev(format!("main got {}", show(&v)));
    ev_state(&g1);
}

fn rule_02_parent_chain_on_finish() {
    // An unstarted parent is started with the child's result; a dead parent passes it on.
    let p = spawn("p", |v: Value| {
        ev(format!("p started with {}", show(&v)));
        "p done"
    });
    let c = spawn_under("c", &p, |_| "c's result");
    ev(format!("main got {}", show(&c.switch(()))));
    ev_state(&p);
    let dead = spawn("dead", |_| ());
    dead.switch(());
    let orphan = spawn_under("orphan", &dead, |_| "orphan's result");
    ev(format!("main got {}", show(&orphan.switch(()))));
}

fn rule_03_panic_climbs_two_levels() {
    let outer = spawn("outer", |_| {
        let _o = Noisy("outer's local");
        let inner = spawn("inner", |_| {
            let _i = Noisy("inner's local");
            boom(3)
        });
        inner.switch(());
        ev("outer went on");
    });
    attempt("outer.switch", || outer.switch(()));
    ev_state(&outer);
}

fn rule_04_throw_into_dead_and_current() {
    let g = spawn("g", |_| ());
    g.switch(());
    attempt("throw into dead g", || g.throw(Boom(41)));
    attempt("throw into current", || current().throw(Boom(42)));
}

fn rule_05_exit_escaping_is_a_value() {
    let g = spawn("g", |_| -> () { std::panic::panic_any(GreenletExit) });
    let v = g.switch(());
    ev(format!(
        "switch -> {} (exit: {})",
        show(&v),
        v.is_greenlet_exit()
    ));
    let u = spawn("u", |_| ev("u ran"));
    let v = u.kill();
    ev(format!("kill unstarted -> {}", show(&v)));
    ev_state(&u);
    let catcher = spawn("catcher", |_| {
        if let Err(p) = catch_unwind(AssertUnwindSafe(|| root().switch(()))) {
            ev(format!("catcher caught {}", payload(&*p)));
        }
        "survived"
    });
    catcher.switch(());
    ev(format!("kill catcher -> {}", show(&catcher.kill())));
}

fn rule_06_drop_with_dropper_as_parent() {
    let outer = spawn("outer", |_| {
        let victim = spawn("victim", |_| {
            let _l = Noisy("victim's local");
            if let Err(p) = catch_unwind(AssertUnwindSafe(|| root().switch(()))) {
                ev(format!(
                    "victim unwinding ({}) under {}",
                    payload(&*p),
                    name(&current().parent().unwrap())
                ));
                std::panic::resume_unwind(p);
            }
        });
        victim.switch(());
        ev("outer drops victim");
        drop(victim);
        ev("outer goes on");
        "outer done"
    });
    ev(format!("main got {}", show(&outer.switch(()))));
    let unstarted = spawn("unstarted", |_| ev("never"));
    drop(unstarted);
    ev("dropped unstarted");
}

fn rule_07_set_parent() {
    let a = spawn("a", |v| v);
    let b = spawn("b", |_| "b's result");
    b.set_parent(&a).expect("set_parent");
    ev(format!("b's parent: {}", name(&b.parent().unwrap())));
    ev(format!("main got {}", show(&b.switch(()))));
}

fn rule_09_inject_panics() {
    let g = spawn("g", |_| {
        let r = catch_unwind(AssertUnwindSafe(|| root().switch(())));
        ev(format!(
            "g: {}",
            match r {
                Ok(v) => format!("resumed with {}", show(&v)),
                Err(p) => format!("caught {}", payload(&*p)),
            }
        ));
        "g done"
    });
    g.switch(());
    g.inject(|| boom(9));
    attempt("g.switch after a panicking inject", || g.switch("value"));
    let u = spawn("u", |_| ev("u's body ran"));
    u.inject(|| boom(90));
    attempt("inject into unstarted", || u.switch(()));
    ev_state(&u);
}

fn rule_10_reset_refused_and_after_panic() {
    let g = spawn("g", |_| {
        root().switch(());
    });
    g.switch(());
    ev(format!("reset suspended: {:?}", g.reset()));
    ev(format!("reset root: {:?}", root().reset()));
    let p = spawn("p", |v: Value| -> i32 {
        let n = v.take::<i32>();
        if n == 1 {
            boom(10)
        }
        n
    });
    attempt("p.switch(1)", || p.switch(1));
    ev(format!("reset: {:?}", p.reset()));
    attempt("p.switch(2)", || p.switch(2));
}

fn rule_12_tracer_panics() {
    let g = spawn("g", |_| {
        let r = catch_unwind(AssertUnwindSafe(|| root().switch(())));
        ev(format!("g caught: {}", r.is_err()));
        "g done"
    });
    g.switch(());
    let previous = settrace(Some(Tracer::new(|e| {
        if let Event::Switch { .. } = e {
            std::panic::panic_any(Boom(12))
        }
    })));
    attempt("switch with a panicking tracer", || g.switch(()));
    ev(format!("tracer removed: {}", gettrace().is_none()));
    settrace(previous);
}

/// Values of every size class: inline (up to two words) and boxed, on both targets.
fn rule_13_values() {
    #[derive(Debug, Clone, PartialEq)]
    struct Three(u32, u32, u32);
    struct Stop;
    let g = spawn("echo", |mut v: Value| {
        while !v.is::<Stop>() {
            v = root().switch(v);
        }
        "echo done"
    });
    g.switch(());
    let check = |v: Value| {
        let back = g.switch(v);
        ev(format!("{} {}", back.type_name(), show(&back)));
        back
    };
    assert_eq!(check(Value::new(7_u8)).take::<u8>(), 7);
    assert_eq!(check(Value::new(-7_i32)).take::<i32>(), -7);
    assert_eq!(check(Value::new(u64::MAX - 1)).take::<u64>(), u64::MAX - 1);
    assert_eq!(check(Value::new(1.5_f64)).take::<f64>(), 1.5);
    assert_eq!(check(Value::new("static str")).take::<&str>(), "static str");
    assert_eq!(
        check(Value::new(Three(1, 2, 3))).take::<Three>(),
        Three(1, 2, 3)
    );
    assert_eq!(
        check(Value::new(u128::MAX / 3)).take::<u128>(),
        u128::MAX / 3
    );
    assert_eq!(check(Value::new([9_u64; 8])).take::<[u64; 8]>(), [9; 8]);
    assert_eq!(
        check(Value::new(String::from("heap string"))).take::<String>(),
        "heap string"
    );
    let rc = Rc::new(5);
    let back = check(Value::new(rc.clone())).take::<Rc<i32>>();
    ev(format!("rc count {}", Rc::strong_count(&back)));
    let wrong = check(Value::new(3_i32)).downcast::<String>();
    ev(format!(
        "downcast to the wrong type gives back: {:?}",
        wrong.err()
    ));
    ev(show(&g.switch(Stop)));
}

// ---------------------------------------------------------------------------------------------
// Platform-layer stress: shadow stacks, the continuation pool, long chains
// ---------------------------------------------------------------------------------------------

/// Each greenlet keeps an address-taken array (on its shadow stack, in wasm) and checks it after
/// every switch while the others run and recurse.
fn shadow_stacks_are_isolated() {
    let mut gs = Vec::new();
    for k in 0..4_u64 {
        gs.push(spawn(&format!("s{k}"), move |_| {
            let mut mine = [0_u64; 64];
            for (i, x) in mine.iter_mut().enumerate() {
                *x = k * 1000 + i as u64;
            }
            let mine = std::hint::black_box(&mut mine);
            for round in 0..50_u64 {
                root().switch(round);
                // Deep frames in between overwrite whatever sits below this frame.
                std::hint::black_box(deep_frames(2));
                for (i, x) in mine.iter().enumerate() {
                    assert_eq!(*x, k * 1000 + i as u64, "s{k}'s array after round {round}");
                }
            }
            mine.iter().sum::<u64>()
        }));
    }
    let mut sums = vec![0_u64; gs.len()];
    for _ in 0..51 {
        for (i, g) in gs.iter().enumerate() {
            let v = g.switch(());
            if g.is_dead() {
                sums[i] = v.take();
            }
        }
    }
    ev(format!("sums {sums:?}"));
    let expect: Vec<u64> = (0..4)
        .map(|k| (0..64).map(|i| k * 1000 + i).sum())
        .collect();
    assert_eq!(sums, expect);
}

/// Many greenlets, one after another: continuations (in wasm) must come from the pool.
fn many_short_lived() {
    let mut total = 0_u64;
    for i in 0..3000_u64 {
        let g = spawn("short", move |v: Value| {
            let x = v.take::<u64>();
            let y = root().switch(x + 1).take::<u64>();
            x + y
        });
        let a = g.switch(i).take::<u64>();
        total += g.switch(a).take::<u64>();
        if i % 3 == 0 {
            // Some never started, some dropped suspended would need unwinding: keep to these.
            drop(spawn("unstarted", |_| ()));
        }
    }
    ev(format!("total {total}"));
    assert_eq!(total, (0..3000).map(|i| 2 * i + 1).sum::<u64>());
}

/// A chain of nested greenlets (Python greenlet's benchmark): each creates the next and
/// switches `n + 1` to it; the last returns, and the value climbs back through every parent.
fn chain_of_500() {
    fn link(left: u32) -> impl FnMut(Value) -> u32 + 'static {
        move |v: Value| {
            let n = v.take::<u32>();
            if left == 0 {
                return n;
            }
            let next = spawn("link", link(left - 1));
            next.switch(n + 1).take::<u32>() + 1
        }
    }
    let first = spawn("link", link(500));
    let r = first.switch(0_u32);
    ev(format!("chain -> {}", show(&r)));
    assert_eq!(r.take::<u32>(), 1000);
}

/// A greenlet backtrace: frames natively, none in wasm (no stack walking there), but the
/// probe's visit to the suspended greenlet must leave it as it was on both.
fn backtrace_probe_leaves_state() {
    let g = spawn("g", |_| {
        let v = root().switch(());
        ev(format!("g resumed with {}", show(&v)));
        "g done"
    });
    g.switch(());
    let frames = g.backtrace();
    ev(format!("backtrace taken: {}", frames.is_some()));
    ev_state(&g);
    ev(format!("g -> {}", show(&g.switch("after probe"))));
}

// ---------------------------------------------------------------------------------------------
// The engine's examples
// ---------------------------------------------------------------------------------------------

fn example_seed() {
    let g = spawn("greenlet 1", |_| {
        ev("in func1 (greenlet 1)");
        root().switch(());
        ev("exiting func1 (greenlet 1)");
    });
    ev("entering greenlet 1");
    g.switch(());
    ev("re-entering greenlet 1");
    g.switch(());
    ev("exiting program");
}

fn example_pingpong() {
    let pong_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let ping_slot: Rc<RefCell<Option<Greenlet>>> = Rc::default();
    let other = pong_slot.clone();
    let ping = spawn("ping", move |v| {
        let mut n: u32 = v.take();
        while n < 5 {
            ev(format!("ping {n}"));
            let pong = other.borrow().clone().expect("pong");
            n = pong.switch(n + 1).take();
        }
        n
    });
    let other = ping_slot.clone();
    let pong = spawn("pong", move |v| {
        let mut n: u32 = v.take();
        loop {
            ev(format!("pong {n}"));
            let ping = other.borrow().clone().expect("ping");
            n = ping.switch(n + 1).take();
        }
    });
    *pong_slot.borrow_mut() = Some(pong.clone());
    *ping_slot.borrow_mut() = Some(ping.clone());
    let hits: u32 = ping.switch(0_u32).take();
    ev(format!("done after {hits} hits"));
    ping_slot.borrow_mut().take();
    // Dropping the last handle to the suspended pong kills it: that unwinds, so keep the
    // handle alive (the scenario must run without unwinding too) and leak it on purpose.
    std::mem::forget(pong_slot.borrow_mut().take());
}

/// The generator example: an `Iterator` on greenlets.
struct Generator<T>(Greenlet, std::marker::PhantomData<T>);

impl<T: 'static> Generator<T> {
    fn new(mut body: impl FnMut(&dyn Fn(T)) + 'static) -> Self {
        let g = spawn("generator", move |_| {
            let yield_ = |v: T| {
                current().parent().expect("parent").switch(Some(v));
            };
            body(&yield_);
            None::<T>
        });
        Generator(g, std::marker::PhantomData)
    }
}

impl<T: 'static> Iterator for Generator<T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.0.is_dead() {
            return None;
        }
        self.0.set_parent(&current()).expect("parent");
        self.0.switch(()).take::<Option<T>>()
    }
}

fn example_generator() {
    let squares = Generator::new(|y| (0..5_u64).for_each(|i| y(i * i)));
    let v: Vec<u64> = squares.collect();
    ev(format!("squares: {v:?}"));
    assert_eq!(v, [0, 1, 4, 9, 16]);
    let mut words = Generator::new(|y| {
        for w in "the quick brown fox jumps".split(' ') {
            y(w.to_uppercase());
        }
    });
    let first_two: Vec<String> = words.by_ref().take(2).collect();
    ev(format!("first two words: {first_two:?}"));
    // The generator is suspended; dropping it would kill it (unwinding): finish it instead.
    let rest: Vec<String> = words.collect();
    ev(format!("the rest: {rest:?}"));
}

fn example_pipeline() {
    enum Item {
        Line(String),
        End,
    }
    let input = "apples 3\nbananas 12\n# a comment\ncherries 7\n\nplums 30\n";
    let stages: Rc<RefCell<Vec<Greenlet>>> = Rc::default();
    let stage = {
        let stages = stages.clone();
        move |i: usize| stages.borrow()[i].clone()
    };
    let next = stage.clone();
    let producer = spawn("producer", move |_| {
        for line in input.lines() {
            ev(format!("producer: read {line:?}"));
            next(1).switch(Item::Line(line.to_string()));
        }
        next(1).switch(Item::End);
    });
    let next = stage.clone();
    let filter = spawn("filter", move |v| {
        let mut item: Item = v.take();
        loop {
            let forward = match &item {
                Item::Line(l) => !l.trim().is_empty() && !l.starts_with('#'),
                Item::End => true,
            };
            if !forward && let Item::Line(l) = &item {
                ev(format!("filter: dropped {l:?}"));
            }
            item = next(if forward { 2 } else { 0 }).switch(item).take();
        }
    });
    let next = stage;
    let consumer = spawn("consumer", move |v| {
        let mut total = 0_u32;
        let mut item: Item = v.take();
        while let Item::Line(line) = item {
            let (what, qty) = line.split_once(' ').expect("name and quantity");
            let qty: u32 = qty.parse().expect("a number");
            total += qty;
            ev(format!("consumer: {what} +{qty} = {total}"));
            item = next(0).switch(()).take();
        }
        total
    });
    stages
        .borrow_mut()
        .extend([producer.clone(), filter, consumer]);
    let total: u32 = producer.switch(()).take();
    ev(format!("total: {total}"));
    assert_eq!(total, 52);
    ev(format!(
        "states: {}",
        stages
            .borrow()
            .iter()
            .map(state)
            .collect::<Vec<_>>()
            .join(" ")
    ));
    // Producer and filter are suspended: dropping them kills them, which needs unwinding.
    std::mem::forget(std::mem::take(&mut *stages.borrow_mut()));
}

fn example_pipeline_cleanup() {
    // The pipeline example's last step: dropping suspended stages kills them.
    let a = spawn("stage", |_| {
        let _l = Noisy("stage's line buffer");
        loop {
            root().switch(());
        }
    });
    a.switch(());
    drop(a);
    ev("stages dropped");
}

// ---------------------------------------------------------------------------------------------
// The list and the runner
// ---------------------------------------------------------------------------------------------

macro_rules! scenarios {
    ($($f:ident: $needs:ident),* $(,)?) => {
        /// Every scenario, in a fixed order (the guest is driven by index).
        pub const SCENARIOS: &[Scenario] = &[
            $(Scenario { name: stringify!($f), needs: Needs::$needs, run: $f }),*
        ];
    };
}

scenarios! {
    case_01_switch_order: Switching,
    case_02_two_greenlets_one_body: Switching,
    case_03_parent_is_creator: Switching,
    case_04_first_switch_is_argument: Switching,
    case_05_return_goes_to_parent: Switching,
    case_06_switch_to_dead_returns_at_once: Switching,
    case_07_root: Switching,
    case_08_states: Switching,
    case_09_panic_goes_to_parent: Unwinding,
    case_10_throw_caught: Unwinding,
    case_11_kill: Unwinding,
    case_12_throw_into_unstarted_chain: Unwinding,
    case_13_drop_kills_suspended: Unwinding,
    case_14_cycles_refused: Switching,
    case_15_threads: Threads,
    case_16_tracer: Unwinding,
    case_17_inject: Switching,
    case_18_reset: Switching,
    case_19_recursion_within_stack_size: Switching,
    case_20_generator: Switching,
    rule_01_switch_to_current: Switching,
    rule_01_dead_goes_to_first_live_ancestor: Switching,
    rule_02_parent_chain_on_finish: Switching,
    rule_03_panic_climbs_two_levels: Unwinding,
    rule_04_throw_into_dead_and_current: Unwinding,
    rule_05_exit_escaping_is_a_value: Unwinding,
    rule_06_drop_with_dropper_as_parent: Unwinding,
    rule_07_set_parent: Switching,
    rule_09_inject_panics: Unwinding,
    rule_10_reset_refused_and_after_panic: Unwinding,
    rule_12_tracer_panics: Unwinding,
    rule_13_values: Switching,
    shadow_stacks_are_isolated: Switching,
    many_short_lived: Switching,
    chain_of_500: Switching,
    backtrace_probe_leaves_state: Switching,
    example_seed: Switching,
    example_pingpong: Switching,
    example_generator: Switching,
    example_pipeline: Switching,
    example_pipeline_cleanup: Unwinding,
}

/// The scenario names, in order.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// How a scenario is run: `Traced` also records every switch and throw the engine's tracer
/// sees (which sends every switch through the engine's slow path); `Plain` leaves the common,
/// flag-free path to be exercised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Traced,
}

fn describe(e: &Event) -> String {
    let (kind, o, t) = match e {
        Event::Switch { origin, target } => ("switch", origin, target),
        Event::Throw { origin, target } => ("throw", origin, target),
    };
    format!("{kind} {}->{}", name(o), name(t))
}

/// Runs scenario `index` and returns its events.
pub fn run_index(index: usize, mode: Mode) -> Vec<String> {
    let s = &SCENARIOS[index];
    LOG.with(|l| l.borrow_mut().clear());
    ev(format!("scenario {} ({mode:?})", s.name));
    let previous = match mode {
        Mode::Plain => settrace(None),
        Mode::Traced => settrace(Some(Tracer::new(|e| ev(describe(e))))),
    };
    (s.run)();
    settrace(previous);
    ev("end");
    LOG.with(|l| std::mem::take(&mut *l.borrow_mut()))
}

/// Runs the scenario called `name` (natively: the harness looks scenarios up by name).
pub fn run(name: &str, mode: Mode) -> Vec<String> {
    let index = SCENARIOS
        .iter()
        .position(|s| s.name == name)
        .unwrap_or_else(|| panic!("no scenario {name}"));
    run_index(index, mode)
}
