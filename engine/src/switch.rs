//! Moving control between greenlets: the rules of `semantics.md` on top of
//! [`arch::switch`](crate::arch::switch).
//!
//! A switch carries one [`Value`] and the sender's address in four registers; a panic travels
//! as a value holding the engine's `Thrown` wrapper, so the receiver tells the two apart with
//! one flag. Everything that is not the common case (a tracer or recorder, a dead sender to
//! clean up, a pending injection, a backtrace probe) sets a bit in the thread's `flags` byte,
//! so the common case costs one test of that byte on each side of the switch.

use std::panic::{self, AssertUnwindSafe};

use crate::arch::{self, Words};
use crate::asan;
use crate::error::GreenletExit;
use crate::greenlet::Greenlet;
use crate::inner::{Inner, Payload, State, dispose, panic_message};
use crate::thread;
use crate::trace::{Outcome, recorder};
use crate::tracer::Event;
use crate::value::Value;

/// Packs what a switch hands over: the value's three words and the sender.
#[inline(always)]
fn pack(v: Value, from: *const Inner) -> Words {
    let [a, b, c] = v.into_words();
    [a, b, c, from as usize]
}

/// Delivers `v` from `origin` towards `target` by the rules of `semantics.md` and, when
/// control must move, switches. Returns what this greenlet receives when it next runs.
///
/// # Safety
/// `origin` is the running greenlet (possibly dying); `target` is a live greenlet of this thread.
#[inline(never)]
pub(crate) unsafe fn deliver(
    mut origin: *const Inner,
    mut target: *const Inner,
    mut v: Value,
) -> Value {
    let current = thread::current();
    loop {
        // SAFETY (whole loop): greenlets on a parent chain are kept alive by the child's link;
        // `target` starts live by the caller's guarantee.
        unsafe {
            // Rule 1/4, dead target: the first non-dead ancestor receives in its place. A root
            // is never dead, so this ends.
            while (*target).state.get() == State::Dead {
                target = (*target).parent.get();
            }
            if target == origin {
                // Switching to the running greenlet: nothing happens.
                return v;
            }
            if thread::tracing() {
                v = observe(origin, target, v);
            }
            if (*target).state.get() == State::Unstarted && v.is_thrown() {
                // Rule 4: a panic into an unstarted greenlet kills it without running its body,
                // and climbs to its parent.
                die_unstarted(target, &v);
                if v.thrown_payload().is_some_and(|p| p.is::<GreenletExit>()) {
                    // Rule 5: the exit escaped (never entered) its body, so the parent gets it
                    // as a value, as in Python.
                    v = Value::new(GreenletExit);
                }
                origin = target;
                target = (*target).parent.get();
                continue;
            }
            if target == current {
                // A panic climbing from greenlets that died unstarted came back to us.
                return v;
            }
            if (*target).handles.get() == 0 {
                // It will run with no handle; its receive keeps the flag up (see receive_slow).
                thread::set_pending();
            }
            if v.is_thrown() {
                // The receiver raises it in its slow path, so that the switch proper never
                // hands back a panic and its callers need not test for one.
                thread::set_pending();
            }
            let cur = &*current;
            match cur.state.get() {
                State::Running => cur.state.set(State::Suspended),
                State::Dead => give_back_own_stack(cur),
                _ => {}
            }
            return switch_to(current, target, v);
        }
    }
}

/// A dying greenlet's last act before it leaves its stack for good: hand the stack to the
/// thread's pool, so that the receiver has nothing to clean up and takes the fast path. Safe
/// while we still run on it because nothing runs on this thread between here and the switch
/// (no tracer, no user code), so nobody can take it out of the pool yet; and only the pool,
/// which neither unmaps nor discards pages: when it is full, the receiver recycles the stack
/// (returning it to its chunk may discard its pages), told so by `PENDING`.
#[inline(always)]
fn give_back_own_stack(me: &Inner) {
    if let Some(stack) = me.take_stack()
        && let Err(stack) = stack.pool()
    {
        me.put_stack(stack);
        thread::set_pending();
    }
}

/// The switch itself: run `target`, and come back with what we receive, which is never a
/// panic (the receiving side raises those). The caller has already marked `current` suspended
/// (or dead).
///
/// # Safety
/// `current` is the running greenlet; `target` is a live unstarted or suspended greenlet of
/// this thread whose saved stack pointer is valid.
#[inline(always)]
pub(crate) unsafe fn switch_to(current: *const Inner, target: *const Inner, v: Value) -> Value {
    // SAFETY: forwarded from the caller; the words are turned into a value exactly once.
    unsafe { Value::from_words(switch_to_words(current, target, v)) }
}

/// [`switch_to`], returning the received value as words: the common path and the slow paths
/// then meet as three plain words, which stay in registers, rather than as a `Value` moved
/// through memory (whose 16-byte copy after 8-byte stores stalls store forwarding).
///
/// # Safety
/// As [`switch_to`]; the words must become one value.
#[inline(always)]
pub(crate) unsafe fn switch_to_words(
    current: *const Inner,
    target: *const Inner,
    v: Value,
) -> [usize; 3] {
    // SAFETY: forwarded from the caller; we are the sender.
    unsafe { jump(current, target, current, v) }
}

/// The switch proper: `target` runs, told that `sender` sent `v` (the probe names its sentinel
/// there); returns the words of what we receive when we run again.
///
/// # Safety
/// As [`switch_to`]; `sender` is `current` or the probe sentinel.
#[inline(always)]
unsafe fn jump(
    current: *const Inner,
    target: *const Inner,
    sender: *const Inner,
    v: Value,
) -> [usize; 3] {
    // SAFETY: both are live greenlets of this thread (caller's guarantee).
    let (cur, tgt) = unsafe { (&*current, &*target) };
    tgt.state.set(State::Running);
    thread::set_current(target);
    // SAFETY: both are live; `current` runs until the switch below (no-op without ASan).
    let fiber = unsafe { asan::start(current, target) };
    // SAFETY: `tgt.sp` is a context saved by `arch::switch` or made by `init_stack` on the
    // target's stack, which is mapped (it is unstarted or suspended).
    let words = unsafe {
        arch::switch(
            cur.sp.as_ptr(),
            tgt.sp.get(),
            tgt.link.get(),
            pack(v, sender),
        )
    };
    asan::finish(fiber);
    // We run again: someone switched to us and set us current.
    // SAFETY: the words were packed by the switch that resumed us.
    unsafe { receive(words, true) }
}

/// [`deliver`], returning words (see [`switch_to_words`]).
///
/// # Safety
/// As [`deliver`].
#[inline(always)]
pub(crate) unsafe fn deliver_words(target: *const Inner, v: Value) -> [usize; 3] {
    let [w0, w1, w2] = v.into_words();
    // The slow path's address is read (volatile, so on the slow path only) from a read-only
    // static: called directly, its address (a GOT entry, from another crate) is hoisted by
    // the compiler into a callee-saved register, which the switch clobbers, and reloaded after
    // every switch.
    // SAFETY: `DELIVER` is a valid, aligned static.
    let deliver = unsafe { std::ptr::read_volatile(&DELIVER) };
    // SAFETY: forwarded from the caller; the words are one value, used once.
    unsafe { deliver(target, w0, w1, w2) };
    thread::take_ret()
}

/// [`deliver_to_slot`], for [`deliver_words`].
static DELIVER: unsafe fn(*const Inner, usize, usize, usize) = deliver_to_slot;

/// [`deliver`], taking the value as three scalar words and leaving the result in the thread's
/// return slot: a function taking or returning a three-word value passes it through memory on
/// the caller's stack, which is what the words path avoids.
///
/// # Safety
/// As [`deliver`]; the words are one value, used once.
#[inline(never)]
unsafe fn deliver_to_slot(target: *const Inner, w0: usize, w1: usize, w2: usize) {
    let origin = thread::current();
    // SAFETY: forwarded from the caller.
    let v = unsafe { Value::from_words([w0, w1, w2]) };
    // SAFETY: forwarded from the caller.
    thread::put_ret(unsafe { deliver(origin, target, v) }.into_words());
}

/// Unpacks what the resumer handed over, doing the uncommon work when the thread's flags say
/// there is some.
///
/// # Safety
/// `words` were packed by the switch that resumed us, and are used once.
/// A greenlet's first receive (in `entry`) leaves an injected function to `run_body`, which
/// runs it under the entry's `catch_unwind`.
#[inline(always)]
unsafe fn receive(words: Words, resuming: bool) -> [usize; 3] {
    let value = [words[0], words[1], words[2]];
    if thread::flags() != 0 {
        // SAFETY: the sender is live (or the probe sentinel); the words are the value it sent.
        unsafe {
            receive_slow(
                resuming,
                0,
                words[0],
                words[1],
                words[2],
                words[3] as *const Inner,
            )
        };
        return thread::take_ret();
    }
    value
}

/// The uncommon work after a switch: answer a backtrace probe, recycle the stack of a sender
/// that died, dispose of a sender that lost its last handle while it ran, and run an injected
/// function (rule 9) right before this greenlet resumes.
///
/// # Safety
/// `from` is the live greenlet (or this thread's probe sentinel) that switched to us.
///
/// The parameters are ordered so that the words land in the argument registers that already
/// hold them after the switch (x86_64: rdx, rcx, r8, r9; `_unused` fills rsi), which saves
/// the common path the moves the compiler would otherwise hoist above the flags test.
#[cold]
#[inline(never)]
unsafe fn receive_slow(
    resuming: bool,
    _unused: usize,
    w0: usize,
    w1: usize,
    w2: usize,
    from: *const Inner,
) {
    // SAFETY: the words are the value the sender packed, used once.
    let v = unsafe { Value::from_words([w0, w1, w2]) };
    thread::clear_pending();
    // Before anything below switches (a dispose kills by switching): while injected functions
    // wait, every resume must look for one.
    thread::refresh_pending();
    if thread::is_probe_sentinel(from) {
        // SAFETY: only `probe` sends from the sentinel, with a ProbeRequest.
        thread::put_ret(unsafe { answer_probe(v) }.into_words());
        return;
    }
    // SAFETY: forwarded from the caller.
    let f = unsafe { &*from };
    if f.state.get() == State::Dead
        && let Some(stack) = f.take_stack()
    {
        // A dead greenlet never runs on its stack again, and we have left it.
        stack.recycle();
    }
    if f.handles.get() == 0 {
        // SAFETY: unreferenced, and no longer running.
        unsafe { dispose(from) };
    }
    // SAFETY: the running greenlet is alive.
    let me = unsafe { &*thread::current() };
    let inject = if resuming { me.take_inject() } else { None };
    thread::refresh_pending();
    if me.handles.get() == 0 {
        // We run with no handle (an unreferenced parent got its child's result): whoever we
        // switch to next must dispose of us (rule 6), so leave the flag up for them.
        thread::set_pending();
    }
    if let Some(f) = inject {
        // Its panic is raised here, where this greenlet resumes, as if thrown; `v` is dropped
        // by the unwinding.
        f();
    }
    // A panic sent to us (a throw, or a child's escaped panic) is raised here, where we
    // resume; `deliver` raised the flag that brought us here. (A first receive never gets one:
    // rule 4 keeps panics out of unstarted greenlets.)
    let v = unthrow(v);
    thread::put_ret(v.into_words());
}

/// A request, sent from the probe sentinel, for a suspended greenlet's return addresses.
pub(crate) struct ProbeRequest {
    pub requester: *const Inner,
    pub reply: *mut Vec<usize>,
}

/// A greenlet that is never switched to: a switch "from" it asks the target for its frames.
pub(crate) fn new_probe_sentinel() -> *const Inner {
    let p = Inner::new_root();
    // SAFETY: just made, not shared; dead so nothing ever tries to run it.
    unsafe { (*p).state.set(State::Dead) };
    p
}

/// Runs on a suspended greenlet's stack: captures its frames for the requester, switches back,
/// and then waits like the switch it was suspended in, returning what that switch receives.
///
/// # Safety
/// `v` holds the ProbeRequest of a requester that waits for the reply.
unsafe fn answer_probe(v: Value) -> Value {
    let req: ProbeRequest = v.take();
    // SAFETY: the requester waits, so its reply slot is alive.
    unsafe { *req.reply = crate::trace::capture_frames() };
    let me = thread::current();
    // SAFETY: we run; the requester is suspended in `probe`, waiting for this switch.
    unsafe {
        (*me).state.set(State::Suspended);
        switch_to(me, req.requester, Value::unit())
    }
}

/// Switches to a suspended `target` as if from the probe sentinel, which makes it capture its
/// frames and switch straight back (no tracer, no recorder, no injected function runs).
///
/// # Safety
/// `target` is a live suspended greenlet of this thread; `sentinel` is the probe sentinel.
pub(crate) unsafe fn probe(sentinel: *const Inner, target: *const Inner, req: ProbeRequest) {
    let current = thread::current();
    // SAFETY: the running greenlet is alive.
    unsafe { (*current).state.set(State::Suspended) };
    // The target's receive must look at the sender (the sentinel) to answer.
    thread::set_pending();
    // SAFETY: the target is suspended with a valid context; it answers with a switch of its
    // own, whose words are one value, used once.
    let answer = unsafe { Value::from_words(jump(current, target, sentinel, Value::new(req))) };
    debug_assert!(!answer.is_thrown());
}

/// Marks an unstarted greenlet dead (a panic reached it before it ran) and returns its stack
/// to the pool.
///
/// # Safety
/// `g` is a live unstarted greenlet of this thread.
unsafe fn die_unstarted(g: *const Inner, v: &Value) {
    // SAFETY: forwarded; an unstarted greenlet has no frames on its stack.
    let g_ref = unsafe { &*g };
    g_ref.state.set(State::Dead);
    if let Some(stack) = g_ref.take_stack() {
        stack.recycle();
    }
    if thread::recording() {
        recorder::finish(g, outcome(v));
    }
}

/// How a greenlet ended, for the trace, from what it hands its parent.
fn outcome(v: &Value) -> Outcome {
    match v.thrown_payload() {
        Some(p) if p.is::<GreenletExit>() => Outcome::Killed,
        Some(p) => Outcome::Panicked {
            message: panic_message(p),
        },
        None if v.is_greenlet_exit() => Outcome::Killed,
        None => Outcome::Returned { value: v.summary() },
    }
}

/// Tells the tracer and the recorder that control passes from `origin` to `target`. A
/// panicking tracer turns the value into that panic.
///
/// # Safety
/// Both are live greenlets of this thread.
#[cold]
unsafe fn observe(origin: *const Inner, target: *const Inner, mut v: Value) -> Value {
    if thread::tracer_installed() {
        // SAFETY: forwarded from the caller.
        if let Err(payload) = unsafe { call_tracer(origin, target, &v) } {
            v = Value::thrown(payload);
        }
    }
    if thread::recording() {
        let what = match v.thrown_payload() {
            Some(p) => Err(panic_message(p)),
            None => Ok(v.summary()),
        };
        recorder::transfer(origin, target, what);
    }
    v
}

/// Calls the tracer with `origin → target`; a panicking tracer is removed and its payload
/// returned, to be raised in the target (rule 12).
///
/// # Safety
/// Both are live greenlets of this thread.
unsafe fn call_tracer(
    origin: *const Inner,
    target: *const Inner,
    v: &Value,
) -> Result<(), Payload> {
    let Some(tracer) = thread::tracer() else {
        return Ok(());
    };
    // SAFETY: both are live greenlets of this thread; the handles own a reference each.
    let (origin, target) = unsafe { (Greenlet::from_ptr(origin), Greenlet::from_ptr(target)) };
    let event = if v.is_thrown() {
        Event::Throw { origin, target }
    } else {
        Event::Switch { origin, target }
    };
    panic::catch_unwind(AssertUnwindSafe(|| tracer.call(&event))).inspect_err(|_| {
        thread::set_tracer(None);
    })
}

/// First code on a new stack: run the body, then hand its result to the parent (rules 2, 3, 5).
#[cfg(not(target_arch = "wasm32"))]
pub(crate) unsafe extern "C" fn entry(
    w0: usize,
    w1: usize,
    w2: usize,
    w3: usize,
    data: usize,
) -> ! {
    // SAFETY: forwarded (called once, by the first switch into a new stack).
    unsafe { entry_body(w0, w1, w2, w3, data) }
}

/// wasm32's entry is "C-unwind": the runtime reuses a dead greenlet's continuation by
/// throwing through its abandoned frames (`asm/wasm/greenlet_rt.wat`), which the abort guard
/// of a "C" function would turn into an abort in a `panic=unwind` build.
#[cfg(target_arch = "wasm32")]
pub(crate) unsafe extern "C-unwind" fn entry(
    w0: usize,
    w1: usize,
    w2: usize,
    w3: usize,
    data: usize,
) -> ! {
    // SAFETY: forwarded (called once, by the first switch into a new stack).
    unsafe { entry_body(w0, w1, w2, w3, data) }
}

/// The body of [`entry`], shared by its per-target declarations.
#[inline(always)]
unsafe fn entry_body(w0: usize, w1: usize, w2: usize, w3: usize, data: usize) -> ! {
    let me = data as *const Inner;
    // SAFETY: we are the running greenlet, just started (no-op without ASan).
    unsafe { asan::entered(me) };
    // SAFETY: the first switch into us packed these words.
    let v = unsafe { Value::from_words(receive([w0, w1, w2, w3], false)) };
    // SAFETY: we are the running greenlet; our Inner lives while we run.
    let result = run_body(unsafe { &*me }, v);
    // SAFETY: still us; after this, we are dead and our stack is left for good.
    unsafe {
        (*me).state.set(State::Dead);
        if thread::recording() {
            recorder::finish(me, outcome(&result));
        }
        // Our stack goes back to the pool right before the last switch (see
        // `give_back_own_stack`); whoever receives it need only dispose of us if no handle is
        // left.
        if (*me).handles.get() == 0 {
            thread::set_pending();
        }
        let parent = (*me).parent.get();
        let p = &*parent;
        if thread::flags() == 0
            && p.state.get() == State::Suspended
            && p.handles.get() != 0
            && !result.is_thrown()
        {
            // The common death, which `deliver` would reach after all its tests: a plain
            // value for a suspended parent that keeps its handle.
            give_back_own_stack(&*me);
            switch_to(me, parent, result);
        } else {
            deliver(me, parent, result);
        }
    }
    // A dead greenlet is never resumed.
    std::process::abort()
}

/// Runs an injected function and the body, catching every panic (nothing unwinds past the
/// entry). A `GreenletExit` that escapes is turned into a value (rule 5).
fn run_body(me: &Inner, arg: Value) -> Value {
    debug_assert!(
        !arg.is_thrown(),
        "a panic is never delivered to an unstarted stack"
    );
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // The thread's count of waiting injections spares the take (a load and a store) in
        // the common case.
        if thread::injections_waiting()
            && let Some(f) = me.take_inject()
        {
            thread::refresh_pending();
            f();
        }
        // SAFETY: the body is only taken or replaced while the greenlet is dead or unstarted,
        // never while it runs.
        let body = unsafe { (*me.body.get()).as_mut() }.expect("greenlet without a body");
        body.call(arg)
    }));
    match outcome {
        Ok(v) => v,
        Err(p) if p.is::<GreenletExit>() => Value::new(GreenletExit),
        Err(p) => Value::thrown(p),
    }
}

/// Throws `payload` into `target` from the running greenlet (rule 4).
///
/// # Safety
/// `target` is a live greenlet of this thread.
pub(crate) unsafe fn throw_raw(target: *const Inner, payload: Payload) -> Value {
    // SAFETY: forwarded from the caller.
    let v = if unsafe { (*target).state.get() } == State::Dead && payload.is::<GreenletExit>() {
        // Killing a dead greenlet is a plain return of GreenletExit (Python's rule).
        Value::new(GreenletExit)
    } else {
        Value::thrown(payload)
    };
    let current = thread::current();
    // SAFETY: `current` runs; `target` is live.
    unthrow(unsafe { deliver(current, target, v) })
}

/// A received value, or the received panic resumed here.
#[inline(always)]
pub(crate) fn unthrow(v: Value) -> Value {
    if v.is_thrown() {
        let [w0, w1, w2] = v.into_words();
        // SAFETY: the words of a thrown value, used once.
        unsafe { raise(w0, w1, w2) }
    }
    v
}

/// Resumes the panic a thrown value carries. Takes scalar words: a `Value` argument would be
/// passed through memory and keep every received value out of registers.
///
/// # Safety
/// The words are one thrown value, used once.
#[cold]
#[inline(never)]
unsafe fn raise(w0: usize, w1: usize, w2: usize) -> ! {
    // SAFETY: forwarded from the caller.
    let v = unsafe { Value::from_words([w0, w1, w2]) };
    match v.into_thrown() {
        Ok(p) => panic::resume_unwind(p),
        Err(_) => unreachable!("checked by the caller"),
    }
}
