//! Model-based tests: random programs run against the real engine and against a small, pure
//! reference model of `shared/semantics.md`; every result, every greenlet's state and parent,
//! and every tracer event must agree.
//!
//! # How the engine is driven
//! Only the root is driven by the test, so greenlet bodies are *scripted*: every greenlet runs
//! the same body, a loop that acts on what it receives. A switch carries a [`Packet`], an item
//! plus the list of [`Action`]s the receiver performs next; a throw carries a [`Code`], a number
//! plus the actions its catcher performs next. Non-control actions (set_parent, drop, inject,
//! reset, spawn) run in order; the first control action (switch, throw, kill, return, panic,
//! exit) hands the rest of the list to whoever receives next. A greenlet with no actions left
//! yields what it got to the root, so every root operation ends with control back at the root.
//! Each greenlet catches by a fixed policy ([`Catch`]): nothing, panics only, or panics and
//! `GreenletExit`. A caught panic with no actions attached makes the body return; a caught
//! `GreenletExit` always does (so a kill is caught but still ends the greenlet, which keeps
//! rule 6's kill-on-drop from leaking a greenlet that refuses to die).
//!
//! Handles live in one table (index 0 is the root). A greenlet suspended in `h.switch(..)`
//! holds a clone of `h` on its stack until the call returns, as any caller does; the model
//! counts those handles too, so kills on drop (rule 6) happen at the same moments in both.
//!
//! # What a failure prints
//! proptest shrinks the program and panics with the minimal one, the operation where engine
//! and model first disagreed, and both sides' logs.
//!
//! `GREENLET_MODEL_CASES` overrides the number of cases (the valgrind CI step runs fewer).

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

use greenlet::{Error, Event, Greenlet, GreenletExit, Tracer, Value, current, root, settrace};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

/// Table slots, the root's included. Small, so that actions often name live greenlets.
const SLOTS: usize = 7;
/// Enough for the scripted body, nested kills and unwinding; only touched pages cost memory.
const STACK_SIZE: usize = 64 << 10;
/// Cases per run and operations per case: about 1,700 cases of up to 60 root operations, each
/// running several actions, exceed the 100,000 operations the issue asks for (the test checks).
const DEFAULT_CASES: u32 = 1_700;
const MAX_OPS: usize = 60;
/// Actions (root operations and actions run by greenlets) one full run must execute.
const MIN_TOTAL_OPS: u64 = 100_000;
/// Skip the operations that reach a known engine bug (the model follows the correct
/// behaviour). None is known today: the one this was made for (a greenlet that got control with
/// no handle was not disposed of when it switched away) is fixed and has its test in
/// `semantics.rs`; set this to `true` while a newly found bug waits for its fix.
const SKIP_KNOWN_BUGS: bool = false;

/// A table index; 0 is the root.
type Idx = usize;

/// What a greenlet catches when a panic reaches its suspension point.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Catch {
    Nothing,
    Panics,
    /// Panics and `GreenletExit`.
    All,
}

/// A function injected with `inject`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Inj {
    /// Logs which greenlet it runs on.
    Log,
    /// Panics with this code.
    Panic(i64),
}

/// One step of a script. Indices name table slots; a missing slot is logged as `Gone`.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Action {
    Switch(Idx, i64),
    Throw(Idx, i64),
    Kill(Idx),
    /// The body returns (skipped at the root).
    Return(i64),
    /// The body panics with a code (skipped at the root).
    Panic(i64),
    /// The body panics with `GreenletExit` (skipped at the root).
    Exit,
    SetParent(Idx, Idx),
    /// Drops the table's handle.
    Drop(Idx),
    Inject(Idx, Inj),
    Reset(Idx),
    /// Spawns with this parent (default: the running greenlet) and policy.
    Spawn(Option<Idx>, Catch),
}

/// What the test does at the root.
#[derive(Clone, Debug)]
enum Op {
    /// The root runs these actions as a script.
    Run(Vec<Action>),
    /// Installs (or removes) the recording tracer.
    Trace(bool),
    /// The tracer panics with this code at its next event (rule 12).
    ArmTracer(i64),
}

/// What a value carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Item {
    Int(i64),
    /// A `GreenletExit` value (a killed greenlet's result).
    Exit,
    Caught(i64),
    ExitCaught,
}

/// The value every switch carries.
struct Packet {
    item: Item,
    rest: Vec<Action>,
}

/// The panic payload every throw and scripted panic carries.
struct Code {
    code: i64,
    rest: Vec<Action>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ErrK {
    Cyclic,
    RootParent,
    ResetActive,
    ResetRoot,
}

/// What a root operation ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Obs {
    /// The root's script had no control action.
    NoSwitch,
    Got(Item),
    Raised(i64),
    RaisedExit,
}

/// The log both sides write; the first field is the greenlet that acted.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Ev {
    Recv(Idx, Item),
    Caught(Idx, i64),
    CaughtExit(Idx),
    Injected(Idx),
    Gone(Idx),
    Full(Idx),
    Skipped(Idx),
    Spawned(Idx, Idx),
    Dropped(Idx, Idx),
    InjectSet(Idx, Idx),
    SetParent(Idx, Result<(), ErrK>),
    Reset(Idx, Result<(), ErrK>),
    RootDone(Obs),
}

/// A tracer event: (is a throw, origin, target).
type Traced = (bool, Idx, Idx);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Unstarted,
    Suspended,
    Running,
    Dead,
}

fn errk(e: Error) -> ErrK {
    match e {
        Error::CyclicParent => ErrK::Cyclic,
        Error::RootParent => ErrK::RootParent,
        Error::ResetActive => ErrK::ResetActive,
        Error::ResetRoot => ErrK::ResetRoot,
        other => panic!("unexpected engine error: {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// The real engine, scripted
// ---------------------------------------------------------------------------------------------

type Payload = Box<dyn Any + Send>;

/// Shared by the test and every scripted body.
struct Ctx {
    table: RefCell<Vec<Option<Greenlet>>>,
    catch: RefCell<Vec<Catch>>,
    ids: Rc<RefCell<HashMap<u64, Idx>>>,
    log: RefCell<Vec<Ev>>,
    /// Actions executed, root operations included.
    ops: Cell<u64>,
}

impl Ctx {
    fn new(ids: Rc<RefCell<HashMap<u64, Idx>>>) -> Rc<Ctx> {
        let ctx = Rc::new(Ctx {
            table: RefCell::new(vec![Some(root())]),
            catch: RefCell::new(vec![Catch::Nothing]),
            ids,
            log: RefCell::default(),
            ops: Cell::new(0),
        });
        ctx.ids.borrow_mut().insert(root().id(), 0);
        ctx
    }

    fn log(&self, e: Ev) {
        self.log.borrow_mut().push(e);
    }

    /// A clone of the table's handle (the borrow ends before anything switches).
    fn get(&self, i: Idx) -> Option<Greenlet> {
        self.table.borrow().get(i).cloned().flatten()
    }

    fn idx(&self, g: &Greenlet) -> Idx {
        self.ids.borrow()[&g.id()]
    }
}

/// How a script's run of actions ended.
enum Flow {
    /// A control call returned (or raised): what it received.
    Resumed(Result<Value, Payload>),
    /// The body returns this.
    Done(Value),
    /// The root ran out of actions without a control call.
    Idle,
}

fn unpack(v: Value) -> (Item, Vec<Action>) {
    match v.downcast::<Packet>() {
        Ok(p) => (p.item, p.rest),
        Err(v) if v.is_greenlet_exit() => (Item::Exit, Vec::new()),
        Err(v) => panic!("unexpected value of type {}", v.type_name()),
    }
}

/// Every greenlet's body: act on what arrives, forever.
fn body(ctx: &Rc<Ctx>, me: Idx, first: Value) -> Value {
    let policy = ctx.catch.borrow()[me];
    let mut got: Result<Value, Payload> = Ok(first);
    loop {
        let (item, actions) = match got {
            Ok(v) => {
                let (item, rest) = unpack(v);
                ctx.log(Ev::Recv(me, item));
                (item, rest)
            }
            Err(p) => match p.downcast::<Code>() {
                Ok(code) if policy != Catch::Nothing => {
                    ctx.log(Ev::Caught(me, code.code));
                    if code.rest.is_empty() {
                        return Value::new(Packet {
                            item: Item::Caught(code.code),
                            rest: Vec::new(),
                        });
                    }
                    (Item::Caught(code.code), code.rest)
                }
                Ok(code) => panic::resume_unwind(code),
                Err(p) if p.is::<GreenletExit>() && policy == Catch::All => {
                    ctx.log(Ev::CaughtExit(me));
                    return Value::new(Packet {
                        item: Item::ExitCaught,
                        rest: Vec::new(),
                    });
                }
                Err(p) => panic::resume_unwind(p),
            },
        };
        match run(ctx, me, item, actions) {
            Flow::Resumed(r) => got = r,
            Flow::Done(v) => return v,
            Flow::Idle => unreachable!("only the root goes idle"),
        }
    }
}

/// A control call on a handle held (like any caller's) until the call returns.
fn call(h: Greenlet, f: impl FnOnce(&Greenlet) -> Value) -> Flow {
    let r = panic::catch_unwind(AssertUnwindSafe(|| f(&h)));
    drop(h);
    Flow::Resumed(r)
}

fn spawn(ctx: &Rc<Ctx>, me: Idx, parent: Option<Idx>, policy: Catch) {
    let idx = ctx.table.borrow().len();
    if idx >= SLOTS {
        return ctx.log(Ev::Full(me));
    }
    let mut b = Greenlet::builder().stack_size(STACK_SIZE);
    if let Some(p) = parent {
        let Some(h) = ctx.get(p) else {
            return ctx.log(Ev::Gone(me));
        };
        b = b.parent(&h);
    }
    ctx.catch.borrow_mut().push(policy);
    let c = ctx.clone();
    let g = b
        .spawn(move |first: Value| body(&c, idx, first))
        .expect("spawn");
    ctx.ids.borrow_mut().insert(g.id(), idx);
    ctx.table.borrow_mut().push(Some(g));
    ctx.log(Ev::Spawned(me, idx));
}

/// Runs a script's actions on the greenlet `me` (0: the root).
fn run(ctx: &Rc<Ctx>, me: Idx, item: Item, actions: Vec<Action>) -> Flow {
    let mut at = 0;
    while at < actions.len() {
        let a = actions[at].clone();
        at += 1;
        let rest = || actions[at..].to_vec();
        ctx.ops.set(ctx.ops.get() + 1);
        let target = match a {
            Action::Switch(t, _) | Action::Throw(t, _) | Action::Kill(t) => Some(t),
            _ => None,
        };
        let handle = target.map(|t| ctx.get(t));
        if let Some(None) = handle {
            ctx.log(Ev::Gone(me));
            continue;
        }
        let h = handle.flatten();
        match a {
            Action::Switch(_, v) => {
                let p = Packet {
                    item: Item::Int(v),
                    rest: rest(),
                };
                return call(h.unwrap(), |h| h.switch(p));
            }
            Action::Throw(_, c) => {
                let code = Code {
                    code: c,
                    rest: rest(),
                };
                return call(h.unwrap(), |h| h.throw(code));
            }
            Action::Kill(_) => return call(h.unwrap(), Greenlet::kill),
            Action::Return(_) | Action::Panic(_) | Action::Exit if me == 0 => {
                ctx.log(Ev::Skipped(me));
            }
            Action::Return(v) => {
                return Flow::Done(Value::new(Packet {
                    item: Item::Int(v),
                    rest: rest(),
                }));
            }
            Action::Panic(c) => panic::resume_unwind(Box::new(Code {
                code: c,
                rest: rest(),
            })),
            Action::Exit => panic::resume_unwind(Box::new(GreenletExit)),
            Action::SetParent(a, b) => {
                let (Some(ha), Some(hb)) = (ctx.get(a), ctx.get(b)) else {
                    ctx.log(Ev::Gone(me));
                    continue;
                };
                let r = ha.set_parent(&hb).map_err(errk);
                ctx.log(Ev::SetParent(me, r));
            }
            Action::Drop(t) => {
                let h = ctx.table.borrow_mut().get_mut(t).and_then(Option::take);
                match h {
                    None => ctx.log(Ev::Gone(me)),
                    Some(h) => {
                        ctx.log(Ev::Dropped(me, t));
                        drop(h);
                    }
                }
            }
            Action::Inject(t, k) => {
                let Some(h) = ctx.get(t) else {
                    ctx.log(Ev::Gone(me));
                    continue;
                };
                match k {
                    Inj::Log => {
                        let c = ctx.clone();
                        h.inject(move || {
                            let on = c.idx(&current());
                            c.log(Ev::Injected(on));
                        });
                    }
                    Inj::Panic(code) => h.inject(move || {
                        panic::resume_unwind(Box::new(Code {
                            code,
                            rest: Vec::new(),
                        }))
                    }),
                }
                ctx.log(Ev::InjectSet(me, t));
            }
            Action::Reset(t) => {
                let Some(h) = ctx.get(t) else {
                    ctx.log(Ev::Gone(me));
                    continue;
                };
                let r = h.reset().map_err(errk);
                ctx.log(Ev::Reset(me, r));
            }
            Action::Spawn(parent, policy) => spawn(ctx, me, parent, policy),
        }
    }
    if me == 0 {
        Flow::Idle
    } else {
        // Out of actions: yield what we got to the root.
        call(root(), |h| {
            h.switch(Packet {
                item,
                rest: Vec::new(),
            })
        })
    }
}

fn observe(r: Result<Value, Payload>) -> Obs {
    match r {
        Ok(v) => Obs::Got(unpack(v).0),
        Err(p) => match p.downcast::<Code>() {
            Ok(c) => Obs::Raised(c.code),
            Err(p) if p.is::<GreenletExit>() => Obs::RaisedExit,
            Err(p) => panic::resume_unwind(p),
        },
    }
}

/// The engine side of one case.
struct Real {
    ctx: Rc<Ctx>,
    events: Rc<RefCell<Vec<Traced>>>,
    armed: Rc<Cell<Option<i64>>>,
}

impl Real {
    fn new() -> Real {
        let ids: Rc<RefCell<HashMap<u64, Idx>>> = Rc::default();
        Real {
            ctx: Ctx::new(ids),
            events: Rc::default(),
            armed: Rc::default(),
        }
    }

    fn apply(&self, op: &Op) {
        match op {
            Op::Trace(false) => {
                settrace(None);
            }
            Op::Trace(true) => {
                let (ids, events, armed) = (
                    self.ctx.ids.clone(),
                    self.events.clone(),
                    self.armed.clone(),
                );
                settrace(Some(Tracer::new(move |e: &Event| {
                    let idx = |g: &Greenlet| ids.borrow()[&g.id()];
                    let throw = matches!(e, Event::Throw { .. });
                    events
                        .borrow_mut()
                        .push((throw, idx(e.origin()), idx(e.target())));
                    if let Some(code) = armed.take() {
                        panic::resume_unwind(Box::new(Code {
                            code,
                            rest: Vec::new(),
                        }));
                    }
                })));
            }
            Op::ArmTracer(c) => self.armed.set(Some(*c)),
            Op::Run(actions) => {
                let done = match run(&self.ctx, 0, Item::Int(0), actions.clone()) {
                    Flow::Resumed(r) => observe(r),
                    Flow::Idle => Obs::NoSwitch,
                    Flow::Done(_) => unreachable!("the root never returns"),
                };
                self.ctx.log(Ev::RootDone(done));
            }
        }
        if !matches!(op, Op::Run(_)) {
            self.ctx.ops.set(self.ctx.ops.get() + 1);
        }
    }

    /// State and parent of every greenlet the table still holds.
    fn snapshot(&self) -> Vec<Option<(St, Option<Idx>)>> {
        let table: Vec<Option<Greenlet>> = self.ctx.table.borrow().clone();
        table
            .iter()
            .map(|h| {
                let h = h.as_ref()?;
                let st = if h.is_current() {
                    St::Running
                } else if h.is_dead() {
                    St::Dead
                } else if h.is_active() {
                    St::Suspended
                } else {
                    St::Unstarted
                };
                Some((st, h.parent().map(|p| self.ctx.idx(&p))))
            })
            .collect()
    }
}

impl Drop for Real {
    /// Whatever happened (a failed comparison included), leave the thread clean for the next
    /// case: no tracer, nothing injected into the root (the root outlives the case), no handles
    /// in the table (which also breaks the Rc cycle through bodies).
    fn drop(&mut self) {
        settrace(None);
        // The root runs what was injected into it when it next resumes: make it resume.
        let flush = Greenlet::new(|_| ());
        let _ = panic::catch_unwind(AssertUnwindSafe(|| flush.switch(())));
        loop {
            let h = self
                .ctx
                .table
                .borrow_mut()
                .iter_mut()
                .find_map(Option::take);
            match h {
                Some(h) => drop(h),
                None => break,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

/// What travels between greenlets (the engine's value or panic, with its content).
#[derive(Clone, Debug)]
enum Msg {
    Val(Item, Vec<Action>),
    ExitVal,
    Throw(i64, Vec<Action>),
    ThrowExit,
}

impl Msg {
    fn is_throw(&self) -> bool {
        matches!(self, Msg::Throw(..) | Msg::ThrowExit)
    }
}

/// Where a greenlet that is not running will go on when it next gets control.
#[derive(Clone, Debug)]
enum Cont {
    /// Unstarted: the body starts.
    Fresh,
    /// Suspended in a switch, throw or kill, holding a handle to the callee.
    Call { held: Option<Idx> },
    /// Suspended inside a kill on drop (rule 6) of `victim`.
    Kill(Box<KillFrame>),
}

#[derive(Clone, Debug)]
struct KillFrame {
    victim: Idx,
    old_parent: Option<Idx>,
    /// What the dropper does once the kill is over.
    after: Task,
}

/// What the running greenlet does next.
#[derive(Clone, Debug)]
enum Task {
    /// It was just switched to by `from`: the sender may need disposing of.
    Received {
        from: Idx,
        msg: Msg,
    },
    /// Injected functions run next, then the continuation.
    Resumed {
        msg: Msg,
        cont: Box<Cont>,
    },
    /// The call returned: the script drops the handle it held.
    Release {
        held: Option<Idx>,
        msg: Msg,
    },
    /// The script looks at what it received.
    Process(Msg),
    /// The script runs actions.
    Run {
        item: Item,
        actions: Vec<Action>,
    },
    /// The body ended with this result.
    Die(Msg),
    RootDone(Obs),
}

#[derive(Clone, Debug)]
struct MG {
    state: St,
    parent: Option<Idx>,
    handles: usize,
    catch: Catch,
    injects: Vec<Inj>,
    cont: Cont,
    /// It last got control while it had no handle (see `known_bug`).
    unreferenced_run: bool,
}

enum Delivery {
    /// No switch: the running greenlet gets this at once.
    Local(Msg),
    /// Control moved; this is what the new running greenlet does.
    Switched(Task),
}

#[derive(Clone, Debug)]
struct Model {
    gs: Vec<MG>,
    table: Vec<bool>,
    cur: Idx,
    tracer: bool,
    armed: Option<i64>,
    log: Vec<Ev>,
    events: Vec<Traced>,
    /// The program reached a state where a known engine bug (see `SKIP_KNOWN_BUGS`) made the
    /// engine disagree: a greenlet that got control with no handle (now fixed).
    known_bug: bool,
    /// A greenlet refused to die when killed on drop and is leaked (documented behaviour).
    leaked: bool,
    /// Kills on drop (rule 6) so far, to report how often the test reaches them.
    kills_on_drop: u64,
    steps: u64,
}

impl Model {
    fn new() -> Model {
        Model {
            gs: vec![MG {
                state: St::Running,
                parent: None,
                handles: 1,
                catch: Catch::Nothing,
                injects: Vec::new(),
                cont: Cont::Fresh,
                unreferenced_run: false,
            }],
            table: vec![true],
            cur: 0,
            tracer: false,
            armed: None,
            log: Vec::new(),
            events: Vec::new(),
            known_bug: false,
            leaked: false,
            kills_on_drop: 0,
            steps: 0,
        }
    }

    fn present(&self, i: Idx) -> bool {
        self.table.get(i).copied().unwrap_or(false)
    }

    fn snapshot(&self) -> Vec<Option<(St, Option<Idx>)>> {
        self.table
            .iter()
            .enumerate()
            .map(|(i, &present)| present.then(|| (self.gs[i].state, self.gs[i].parent)))
            .collect()
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Trace(on) => self.tracer = *on,
            Op::ArmTracer(c) => self.armed = Some(*c),
            Op::Run(actions) => self.exec(Task::Run {
                item: Item::Int(0),
                actions: actions.clone(),
            }),
        }
    }

    fn exec(&mut self, mut task: Task) {
        loop {
            self.steps += 1;
            assert!(self.steps < 10_000_000, "the model does not terminate");
            task = match task {
                Task::RootDone(obs) => {
                    assert_eq!(self.cur, 0, "only the root finishes an operation");
                    self.log.push(Ev::RootDone(obs));
                    return;
                }
                Task::Received { from, msg } => {
                    let cont = std::mem::replace(&mut self.gs[self.cur].cont, Cont::Fresh);
                    let next = Task::Resumed {
                        msg,
                        cont: Box::new(cont),
                    };
                    // The receiver disposes of a sender that has no handle left.
                    if from != 0 && self.gs[from].handles == 0 {
                        if self.gs[from].unreferenced_run
                            && self.gs[from].state == St::Suspended
                            && !self.tracer
                        {
                            self.known_bug = true;
                        }
                        self.dispose(from, next)
                    } else {
                        next
                    }
                }
                Task::Resumed { msg, cont } => {
                    let me = self.cur;
                    // Rule 9: injected functions run in order, right before it resumes; a panic
                    // ends the chain and takes the place of what was received.
                    let mut injected_panic = None;
                    for k in std::mem::take(&mut self.gs[me].injects) {
                        match k {
                            Inj::Log => self.log.push(Ev::Injected(me)),
                            Inj::Panic(c) => {
                                injected_panic = Some(c);
                                break;
                            }
                        }
                    }
                    match *cont {
                        Cont::Fresh => match injected_panic {
                            Some(c) => Task::Die(Msg::Throw(c, Vec::new())),
                            None => Task::Process(msg),
                        },
                        Cont::Call { held } => Task::Release {
                            held,
                            msg: match injected_panic {
                                Some(c) => Msg::Throw(c, Vec::new()),
                                None => msg,
                            },
                        },
                        // Whatever the victim sent back, or a panic on the way, ends the kill
                        // (a panic escaping a kill on drop is printed and dropped).
                        Cont::Kill(frame) => self.finish_kill(*frame),
                    }
                }
                Task::Release { held, msg } => self.release(held, Task::Process(msg)),
                Task::Process(msg) => self.process(msg),
                Task::Run { item, actions } => self.run(item, actions),
                Task::Die(msg) => {
                    let me = self.cur;
                    self.gs[me].state = St::Dead;
                    let parent = self.gs[me].parent.expect("the root never dies");
                    match self.deliver(me, parent, msg) {
                        Delivery::Switched(t) => t,
                        Delivery::Local(_) => unreachable!("a dead greenlet never receives"),
                    }
                }
            };
        }
    }

    /// Releases a handle held by the running greenlet's script, then goes on with `after`.
    fn release(&mut self, held: Option<Idx>, after: Task) -> Task {
        match held {
            Some(h) if h != 0 => {
                self.gs[h].handles -= 1;
                if self.gs[h].handles == 0 {
                    self.dispose(h, after)
                } else {
                    after
                }
            }
            _ => after,
        }
    }

    /// Rule 6: a greenlet with no handles left is killed if suspended; the running greenlet is
    /// left to whoever runs after it; unstarted and dead ones are freed (nothing runs).
    fn dispose(&mut self, g: Idx, after: Task) -> Task {
        if g == self.cur || self.gs[g].state != St::Suspended {
            return after;
        }
        let me = self.cur;
        self.kills_on_drop += 1;
        self.gs[g].handles = 1;
        // The dropper holds a handle on itself for the duration of the kill, so that the
        // victim's unwinding cannot dispose of it while it waits inside the kill.
        self.gs[me].handles += 1;
        let old_parent = self.gs[g].parent.replace(me);
        let frame = KillFrame {
            victim: g,
            old_parent,
            after,
        };
        match self.deliver(me, g, Msg::ThrowExit) {
            Delivery::Switched(t) => {
                self.gs[me].cont = Cont::Kill(Box::new(frame));
                t
            }
            Delivery::Local(_) => unreachable!("a suspended victim is always switched to"),
        }
    }

    fn finish_kill(&mut self, frame: KillFrame) -> Task {
        let me = self.cur;
        let v = frame.victim;
        self.gs[v].parent = frame.old_parent;
        self.gs[v].handles -= 1;
        if self.gs[v].handles == 0 && self.gs[v].state == St::Suspended {
            self.leaked = true;
        }
        // The dropper's own handle for the kill; if it was the last, the dropper is disposed
        // of after it next switches away.
        self.gs[me].handles -= 1;
        frame.after
    }

    /// Rules 1–4 for one message from `origin` (the running greenlet, or one that just died).
    fn deliver(&mut self, origin: Idx, target: Idx, mut msg: Msg) -> Delivery {
        let (mut origin, mut target) = (origin, target);
        loop {
            // Rule 1/4: a dead target's first live ancestor receives in its place.
            while self.gs[target].state == St::Dead {
                target = self.gs[target].parent.expect("the root is never dead");
            }
            if target == origin {
                return Delivery::Local(msg);
            }
            // Rule 12: the tracer sees it first; a panicking tracer is removed and its panic
            // takes the message's place.
            if self.tracer {
                self.events.push((msg.is_throw(), origin, target));
                if let Some(c) = self.armed.take() {
                    self.tracer = false;
                    msg = Msg::Throw(c, Vec::new());
                }
            }
            // Rule 4: a panic into an unstarted greenlet kills it unrun and climbs; an escaping
            // GreenletExit turns into a value (rule 5).
            if self.gs[target].state == St::Unstarted && msg.is_throw() {
                self.gs[target].state = St::Dead;
                if let Msg::ThrowExit = msg {
                    msg = Msg::ExitVal;
                }
                origin = target;
                target = self.gs[target].parent.expect("the root is never unstarted");
                continue;
            }
            if target == self.cur {
                return Delivery::Local(msg);
            }
            let from = self.cur;
            if self.gs[from].state == St::Running {
                self.gs[from].state = St::Suspended;
            }
            self.gs[target].state = St::Running;
            self.gs[target].unreferenced_run = self.gs[target].handles == 0;
            self.cur = target;
            return Delivery::Switched(Task::Received { from, msg });
        }
    }

    /// A control call by the running greenlet's script, holding a handle to `held`.
    fn call(&mut self, target: Idx, msg: Msg) -> Task {
        let me = self.cur;
        if target != 0 {
            self.gs[target].handles += 1;
        }
        let held = Some(target);
        match self.deliver(me, target, msg) {
            Delivery::Local(m) => Task::Release { held, msg: m },
            Delivery::Switched(t) => {
                self.gs[me].cont = Cont::Call { held };
                t
            }
        }
    }

    /// The scripted body's reaction to what it received (the root just reports it).
    fn process(&mut self, msg: Msg) -> Task {
        let me = self.cur;
        if me == 0 {
            return Task::RootDone(match msg {
                Msg::Val(item, _) => Obs::Got(item),
                Msg::ExitVal => Obs::Got(Item::Exit),
                Msg::Throw(c, _) => Obs::Raised(c),
                Msg::ThrowExit => Obs::RaisedExit,
            });
        }
        let policy = self.gs[me].catch;
        match msg {
            Msg::Val(item, actions) => {
                self.log.push(Ev::Recv(me, item));
                Task::Run { item, actions }
            }
            Msg::ExitVal => {
                self.log.push(Ev::Recv(me, Item::Exit));
                Task::Run {
                    item: Item::Exit,
                    actions: Vec::new(),
                }
            }
            Msg::Throw(c, rest) if policy != Catch::Nothing => {
                self.log.push(Ev::Caught(me, c));
                if rest.is_empty() {
                    Task::Die(Msg::Val(Item::Caught(c), Vec::new()))
                } else {
                    Task::Run {
                        item: Item::Caught(c),
                        actions: rest,
                    }
                }
            }
            Msg::Throw(c, rest) => Task::Die(Msg::Throw(c, rest)),
            Msg::ThrowExit if policy == Catch::All => {
                self.log.push(Ev::CaughtExit(me));
                Task::Die(Msg::Val(Item::ExitCaught, Vec::new()))
            }
            // Rule 5: an escaping GreenletExit reaches the parent as a value.
            Msg::ThrowExit => Task::Die(Msg::ExitVal),
        }
    }

    fn run(&mut self, item: Item, mut actions: Vec<Action>) -> Task {
        let me = self.cur;
        if actions.is_empty() {
            return if me == 0 {
                Task::RootDone(Obs::NoSwitch)
            } else {
                self.call(0, Msg::Val(item, Vec::new()))
            };
        }
        let a = actions.remove(0);
        let rest = actions;
        let go_on = |rest| Task::Run {
            item,
            actions: rest,
        };
        let named = match a {
            Action::Switch(t, _) | Action::Throw(t, _) | Action::Kill(t) => Some(t),
            _ => None,
        };
        if named.is_some_and(|t| !self.present(t)) {
            self.log.push(Ev::Gone(me));
            return go_on(rest);
        }
        match a {
            Action::Switch(t, v) => self.call(t, Msg::Val(Item::Int(v), rest)),
            Action::Throw(t, c) => self.call(t, Msg::Throw(c, rest)),
            Action::Kill(t) => {
                // Killing a dead greenlet is a GreenletExit value at once (rule 5).
                let msg = if self.gs[t].state == St::Dead {
                    Msg::ExitVal
                } else {
                    Msg::ThrowExit
                };
                self.call(t, msg)
            }
            Action::Return(_) | Action::Panic(_) | Action::Exit if me == 0 => {
                self.log.push(Ev::Skipped(me));
                go_on(rest)
            }
            Action::Return(v) => Task::Die(Msg::Val(Item::Int(v), rest)),
            Action::Panic(c) => Task::Die(Msg::Throw(c, rest)),
            Action::Exit => Task::Die(Msg::ExitVal),
            Action::SetParent(a, b) => {
                if !self.present(a) || !self.present(b) {
                    self.log.push(Ev::Gone(me));
                } else {
                    let r = self.set_parent(a, b);
                    self.log.push(Ev::SetParent(me, r));
                }
                go_on(rest)
            }
            Action::Drop(t) => {
                if !self.present(t) {
                    self.log.push(Ev::Gone(me));
                    return go_on(rest);
                }
                self.table[t] = false;
                self.log.push(Ev::Dropped(me, t));
                self.release(Some(t), go_on(rest))
            }
            Action::Inject(t, k) => {
                if self.present(t) {
                    self.gs[t].injects.push(k);
                    self.log.push(Ev::InjectSet(me, t));
                } else {
                    self.log.push(Ev::Gone(me));
                }
                go_on(rest)
            }
            Action::Reset(t) => {
                if self.present(t) {
                    let r = self.reset(t);
                    self.log.push(Ev::Reset(me, r));
                } else {
                    self.log.push(Ev::Gone(me));
                }
                go_on(rest)
            }
            Action::Spawn(parent, catch) => {
                if self.table.len() >= SLOTS {
                    self.log.push(Ev::Full(me));
                } else if parent.is_some_and(|p| !self.present(p)) {
                    self.log.push(Ev::Gone(me));
                } else {
                    let idx = self.gs.len();
                    self.gs.push(MG {
                        state: St::Unstarted,
                        // Default parent: the greenlet running now.
                        parent: Some(parent.unwrap_or(me)),
                        handles: 1,
                        catch,
                        injects: Vec::new(),
                        cont: Cont::Fresh,
                        unreferenced_run: false,
                    });
                    self.table.push(true);
                    self.log.push(Ev::Spawned(me, idx));
                }
                go_on(rest)
            }
        }
    }

    /// Rule 7.
    fn set_parent(&mut self, g: Idx, p: Idx) -> Result<(), ErrK> {
        if g == 0 {
            return Err(ErrK::RootParent);
        }
        let mut at = Some(p);
        while let Some(a) = at {
            if a == g {
                return Err(ErrK::Cyclic);
            }
            at = self.gs[a].parent;
        }
        self.gs[g].parent = Some(p);
        Ok(())
    }

    /// Rule 10.
    fn reset(&mut self, g: Idx) -> Result<(), ErrK> {
        if g == 0 {
            return Err(ErrK::ResetRoot);
        }
        match self.gs[g].state {
            St::Unstarted => Ok(()),
            St::Suspended | St::Running => Err(ErrK::ResetActive),
            St::Dead => {
                self.gs[g].state = St::Unstarted;
                self.gs[g].cont = Cont::Fresh;
                Ok(())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Programs and the comparison
// ---------------------------------------------------------------------------------------------

fn idx() -> impl Strategy<Value = Idx> {
    prop_oneof![1 => Just(0), 6 => 1..SLOTS]
}

fn num() -> impl Strategy<Value = i64> {
    0..100i64
}

fn catch() -> impl Strategy<Value = Catch> {
    prop_oneof![Just(Catch::Nothing), Just(Catch::Panics), Just(Catch::All)]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        8 => (idx(), num()).prop_map(|(t, v)| Action::Switch(t, v)),
        2 => (idx(), num()).prop_map(|(t, c)| Action::Throw(t, c)),
        2 => idx().prop_map(Action::Kill),
        2 => num().prop_map(Action::Return),
        1 => num().prop_map(Action::Panic),
        1 => Just(Action::Exit),
        2 => (idx(), idx()).prop_map(|(a, b)| Action::SetParent(a, b)),
        2 => idx().prop_map(Action::Drop),
        2 => (idx(), prop_oneof![3 => Just(Inj::Log), 1 => num().prop_map(Inj::Panic)])
            .prop_map(|(t, k)| Action::Inject(t, k)),
        1 => idx().prop_map(Action::Reset),
        2 => (option::of(idx()), catch()).prop_map(|(p, c)| Action::Spawn(p, c)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        14 => vec(action(), 1..6).prop_map(Op::Run),
        1 => any::<bool>().prop_map(Op::Trace),
        1 => num().prop_map(Op::ArmTracer),
    ]
}

/// A program: whether tracing starts on, a few greenlets, then random operations.
fn program() -> impl Strategy<Value = Vec<Op>> {
    (any::<bool>(), vec(catch(), 1..4), vec(op(), 1..MAX_OPS)).prop_map(|(traced, spawns, ops)| {
        let mut program = vec![Op::Trace(traced)];
        program.extend(
            spawns
                .into_iter()
                .map(|c| Op::Run(vec![Action::Spawn(None, c)])),
        );
        program.extend(ops);
        program
    })
}

/// Runs one program on both sides, comparing after every operation; then tears everything
/// down the same way and checks that every greenlet's body was freed.
fn check(program: &[Op], stats: &Stats) -> Result<(), TestCaseError> {
    let mut model = Model::new();
    let real = Real::new();
    let mut skipped_ops = 0;
    let step = |model: &mut Model, op: &Op, at: &str| -> Result<bool, TestCaseError> {
        let mut trial = model.clone();
        trial.apply(op);
        if trial.known_bug && SKIP_KNOWN_BUGS {
            return Ok(false);
        }
        *model = trial;
        real.apply(op);
        let real_log = real.ctx.log.borrow().clone();
        let real_events = real.events.borrow().clone();
        let context = || {
            format!(
                "at {at}: {op:?}\nlog (engine): {real_log:?}\nlog (model):  {:?}\nevents (engine): \
                 {real_events:?}\nevents (model):  {:?}",
                model.log, model.events
            )
        };
        if real_log != model.log {
            return Err(TestCaseError::fail(format!("logs differ {}", context())));
        }
        if real_events != model.events {
            return Err(TestCaseError::fail(format!(
                "tracer events differ {}",
                context()
            )));
        }
        let (real_states, model_states) = (real.snapshot(), model.snapshot());
        if real_states != model_states {
            return Err(TestCaseError::fail(format!(
                "states or parents differ: engine {real_states:?}, model {model_states:?} {}",
                context()
            )));
        }
        if !current().is_root() {
            return Err(TestCaseError::fail(format!(
                "the root is not running {}",
                context()
            )));
        }
        Ok(true)
    };
    for (i, op) in program.iter().enumerate() {
        if !step(&mut model, op, &format!("operation {i}"))? {
            skipped_ops += 1;
        }
    }
    // Teardown: kill what is suspended (breaking handle cycles through stacks), then drop
    // every handle, compared like any other operation.
    step(&mut model, &Op::Trace(false), "teardown")?;
    for _ in 0..SLOTS {
        let Some(g) =
            (1..model.table.len()).find(|&i| model.table[i] && model.gs[i].state == St::Suspended)
        else {
            break;
        };
        if !step(&mut model, &Op::Run(vec![Action::Kill(g)]), "teardown kill")? {
            break;
        }
    }
    for i in 0..model.table.len() {
        step(&mut model, &Op::Run(vec![Action::Drop(i)]), "teardown drop")?;
    }
    // A greenlet left suspended (handles held on each other's stacks, a cycle like one of
    // `Rc`s) keeps the context alive legitimately.
    let stranded = model.gs.iter().skip(1).any(|g| g.state == St::Suspended);
    stats.ops.set(stats.ops.get() + real.ctx.ops.get());
    stats.skipped.set(stats.skipped.get() + skipped_ops);
    stats
        .events
        .set(stats.events.get() + model.events.len() as u64);
    stats.kills.set(stats.kills.get() + model.kills_on_drop);
    let ctx = real.ctx.clone();
    drop(real);
    if skipped_ops == 0 && !model.leaked && !model.known_bug && !stranded {
        prop_assert_eq!(
            Rc::strong_count(&ctx),
            1,
            "every greenlet body and injected function is freed"
        );
    }
    Ok(())
}

/// Totals over all cases, reported at the end.
#[derive(Default)]
struct Stats {
    ops: Cell<u64>,
    events: Cell<u64>,
    skipped: Cell<u64>,
    kills: Cell<u64>,
}

#[test]
fn engine_agrees_with_the_model() {
    // Under qemu (the aarch64 CI step) a quarter: enough to exercise that architecture's
    // switch on every path, and the step stays short. The x86_64 run does the 100,000.
    let default = if cfg!(target_arch = "x86_64") {
        DEFAULT_CASES
    } else {
        DEFAULT_CASES / 4
    };
    let cases = std::env::var("GREENLET_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let stats = Stats::default();
    let started = std::time::Instant::now();
    let result = runner.run(&program(), |p| check(&p, &stats));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, program)) => {
            panic!("engine and model disagree: {why}\nminimal program: {program:#?}")
        }
        Err(e) => panic!("{e}"),
    }
    eprintln!(
        "model test: {cases} cases, {} operations, {} tracer events, {} kills on drop, {} \
         operations skipped (known bug), {:.1} s",
        stats.ops.get(),
        stats.events.get(),
        stats.kills.get(),
        stats.skipped.get(),
        started.elapsed().as_secs_f64()
    );
    if cases >= DEFAULT_CASES {
        assert!(
            stats.ops.get() >= MIN_TOTAL_OPS,
            "only {} operations ran",
            stats.ops.get()
        );
    }
}
