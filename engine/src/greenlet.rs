//! The safe API: [`Greenlet`] handles, the [`Builder`], and the switching rules of
//! `shared/semantics.md` on top of the platform layer in [`crate::arch`].

use std::any::{Any, TypeId};
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::arch;
use crate::error::{Error, GreenletExit};
use crate::stack::{self, Stack};
use crate::thread;
use crate::trace::recorder;
use crate::tracer::Event;
use crate::value::Value;

/// Where a greenlet is in its life.
/// Ordered so that "can be switched to with a value right away" is `<= Suspended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    Unstarted,
    Suspended,
    Running,
    Dead,
}

type Body = Box<dyn FnMut(Value) -> Value>;
type Payload = Box<dyn Any + Send>;

/// The greenlet itself; handles point at it.
///
/// Two counts manage its life. `handles` counts [`Greenlet`] handles (and, for a root, its
/// thread): when it drops to zero, a suspended greenlet is killed (rule 6). `links` counts
/// children whose parent this is: they keep the `Inner` (not the stack) alive so that values
/// can climb through it, but do not keep it from being killed, which would leak any greenlet
/// holding a handle to its own child. Memory goes when both are zero and no frames are left.
/// The running greenlet holds no count of its own: if its handles drop to zero while it runs,
/// the greenlet that runs after it disposes of it (see [`after_switch`]).
pub(crate) struct Inner {
    /// Saved stack pointer while suspended or unstarted; written by the switch.
    sp: Cell<*mut u8>,
    state: Cell<State>,
    handles: Cell<usize>,
    links: Cell<usize>,
    /// Strong reference to the parent; null only for a root.
    parent: Cell<*const Inner>,
    /// Runs once right before the greenlet next resumes.
    inject: Cell<Option<Box<dyn FnOnce()>>>,
    id: u64,
    name: Option<Box<str>>,
    /// Usable stack bytes (the size the builder asked for, page-rounded); 0 for a root.
    stack_size: usize,
    /// The stack while unstarted, suspended or running; None for a root and once dead.
    stack: UnsafeCell<Option<Stack>>,
    /// None for a root.
    body: UnsafeCell<Option<Body>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Inner {
    /// A thread's root greenlet, already running, with one reference (the thread's).
    pub(crate) fn new_root() -> *const Inner {
        Box::into_raw(Box::new(Inner {
            sp: Cell::new(ptr::null_mut()),
            state: Cell::new(State::Running),
            handles: Cell::new(1),
            links: Cell::new(0),
            parent: Cell::new(ptr::null()),
            inject: Cell::new(None),
            id: next_id(),
            name: Some("main".into()),
            stack_size: 0,
            stack: UnsafeCell::new(None),
            body: UnsafeCell::new(None),
        }))
    }

    fn is_root(&self) -> bool {
        self.parent.get().is_null()
    }

    /// The parent (null for a root).
    pub(crate) fn parent_ptr(&self) -> *const Inner {
        self.parent.get()
    }

    /// Maps (or reuses) a stack and lays out the first frame; the greenlet becomes unstarted.
    fn prepare(&self) -> Result<(), Error> {
        let stack = Stack::get(self.stack_size)?;
        if thread::recording() {
            // Zeroed pages make the trace's high-water mark exact for this greenlet (a pooled
            // stack still holds its previous user's bytes). Before the first frame is written.
            stack.discard();
        }
        // SAFETY: the top of a fresh stack is page-aligned with the whole stack below it, and
        // the stack is stored in this greenlet, which outlives every switch into it.
        let sp = unsafe { arch::init_stack(stack.top(), entry, self as *const Inner as usize) };
        self.sp.set(sp);
        // SAFETY: the stack slot is only touched by the thread that owns this greenlet, and
        // never while the greenlet runs on it (it is unstarted or dead here).
        unsafe { *self.stack.get() = Some(stack) };
        self.state.set(State::Unstarted);
        Ok(())
    }

    /// Guard page, name, id and size of this greenlet's stack, for the overflow handler.
    fn guard_info(&self) -> Option<crate::overflow::GuardInfo> {
        // SAFETY: read on the thread running this greenlet, from the signal handler of a fault
        // in its own code; nothing is changing the stack slot at that moment.
        let stack = unsafe { (*self.stack.get()).as_ref()? };
        let guard = stack.guard();
        Some(crate::overflow::GuardInfo {
            guard: (guard.start, guard.end),
            id: self.id,
            name: self.name.as_deref().unwrap_or("<unnamed>") as *const str,
            size: stack.size(),
        })
    }
}

/// What the trace recorder reads of a greenlet.
pub(crate) struct View<'a> {
    pub id: u64,
    pub name: Option<&'a str>,
    pub root: bool,
    pub state: crate::trace::State,
    pub parent: Option<u64>,
    /// Saved stack pointer (meaningful while suspended).
    pub sp: usize,
    pub stack: Option<&'a Stack>,
    pub stack_size: usize,
}

impl Inner {
    pub(crate) fn view(&self) -> View<'_> {
        let parent = self.parent.get();
        View {
            id: self.id,
            name: self.name.as_deref(),
            root: self.is_root(),
            state: match self.state.get() {
                State::Unstarted => crate::trace::State::Unstarted,
                State::Suspended => crate::trace::State::Suspended,
                State::Running => crate::trace::State::Running,
                State::Dead => crate::trace::State::Dead,
            },
            // SAFETY: a parent link keeps the parent alive.
            parent: (!parent.is_null()).then(|| unsafe { (*parent).id }),
            sp: self.sp.get() as usize,
            // SAFETY: read on the owning thread while no switch is in progress.
            stack: unsafe { (*self.stack.get()).as_ref() },
            stack_size: self.stack_size,
        }
    }
}

/// The overflow handler's view of the running greenlet.
fn running_guard_info() -> Option<crate::overflow::GuardInfo> {
    let cur = thread::HOT.try_with(|h| h.current.get()).ok()?;
    if cur.is_null() {
        return None;
    }
    // SAFETY: the running greenlet is alive (it is executing the faulting code).
    unsafe { (*cur).guard_info() }
}

/// Adds a handle reference.
///
/// # Safety
/// `p` must point to a live greenlet of this thread.
#[inline]
unsafe fn retain_handle(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    g.handles.set(g.handles.get() + 1);
}

/// Drops a handle reference; the last one kills a suspended greenlet (rule 6).
///
/// # Safety
/// `p` must point to a live greenlet of this thread, and the caller must own the reference.
#[inline]
pub(crate) unsafe fn release_handle(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    let n = g.handles.get() - 1;
    g.handles.set(n);
    if n == 0 {
        // SAFETY: the last handle is gone; `dispose` decides what that means.
        unsafe { dispose(p) }
    }
}

/// Adds a parent-link reference (a child, or a kill's temporary parent, points here).
///
/// # Safety
/// `p` must point to a live greenlet of this thread.
#[inline]
unsafe fn retain_link(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    g.links.set(g.links.get() + 1);
}

/// Drops a parent-link reference.
///
/// # Safety
/// `p` must point to a live greenlet of this thread, and the caller must own the reference.
unsafe fn release_link(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    let n = g.links.get() - 1;
    g.links.set(n);
    if n == 0 && g.handles.get() == 0 {
        // SAFETY: nothing references it any more.
        unsafe { dispose(p) }
    }
}

/// Whether nothing references `g` and it has no frames, so its memory can go.
fn freeable(p: *const Inner, g: &Inner) -> bool {
    g.handles.get() == 0
        && g.links.get() == 0
        && matches!(g.state.get(), State::Unstarted | State::Dead)
        && p != thread::current()
}

/// A greenlet that lost its last handle (rule 6), or its last link with no handle left: kill
/// it if it is suspended, free it if nothing references it any more.
///
/// # Safety
/// `p` must point to a live greenlet of this thread with no handles.
#[cold]
unsafe fn dispose(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    if p == thread::current() {
        // Running (or dying) on its own stack: whoever runs next disposes of it.
        return;
    }
    if g.state.get() == State::Suspended {
        // SAFETY: forwarded from the caller.
        unsafe { kill_unreferenced(p) };
    }
    if freeable(p, g) {
        // SAFETY: unreferenced, with no frames and not running.
        unsafe { free(p) };
    }
}

/// Kills a suspended greenlet with no handles, with the disposing greenlet as its temporary
/// parent, so that control comes back here when its stack has unwound.
///
/// # Safety
/// `p` is a live suspended greenlet of this thread with no handles.
unsafe fn kill_unreferenced(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    // A handle for the duration of the kill, so nothing disposes of it meanwhile.
    g.handles.set(1);
    let cur = thread::current();
    // SAFETY: `cur` is the live running greenlet; the temporary parent link owns this reference.
    unsafe { retain_link(cur) };
    let old_parent = g.parent.replace(cur);
    if thread::recording() {
        // SAFETY: both parents are alive (links).
        let (old, new) = unsafe { ((*old_parent).id, (*cur).id) };
        recorder::parent_changed(p, Some(old), Some(new));
    }
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `p` is a live suspended greenlet of this thread.
        unsafe { throw_raw(p, Box::new(GreenletExit)) }
    }));
    let temp_parent = g.parent.replace(old_parent);
    if thread::recording() {
        // SAFETY: both parents are alive (links).
        let (old, new) = unsafe { ((*temp_parent).id, (*old_parent).id) };
        recorder::parent_changed(p, Some(old), Some(new));
    }
    // SAFETY: releasing the temporary parent link taken above; the parent is running.
    unsafe { release_link(temp_parent) };
    if let Err(payload) = outcome {
        // A Drop must not panic: a panic escaping the kill is reported, like Python's
        // "exception ignored", and dropped.
        eprintln!(
            "greenlet: a panic escaped while killing unreferenced greenlet {}: {}; ignored",
            describe(g),
            panic_message(&*payload)
        );
    }
    g.handles.set(g.handles.get() - 1);
    if g.handles.get() == 0 && g.state.get() == State::Suspended {
        // It caught the kill and switched away: its frames are live but no handle can reach
        // them. Leak it rather than free memory it still runs on.
        eprintln!(
            "greenlet: unreferenced greenlet {} refused to die when killed; leaked",
            describe(g)
        );
    }
}

/// Frees an unreferenced greenlet with no frames, then each ancestor that this leaves
/// unreferenced, in a loop (a long parent chain must not recurse once per greenlet).
///
/// # Safety
/// `freeable(p)` holds, and `p` was made by `Box::into_raw`.
unsafe fn free(mut p: *const Inner) {
    loop {
        if thread::recording() {
            recorder::dropped(p);
        }
        // SAFETY: forwarded from the caller (or checked below for an ancestor): we own the
        // only pointer now.
        let inner = unsafe { Box::from_raw(p as *mut Inner) };
        let parent = inner.parent.get();
        // Dropping the body may run user code (captured values' Drop), which may touch other
        // greenlets; the parent link, still held, keeps the ancestors alive meanwhile.
        drop(inner);
        if parent.is_null() {
            return;
        }
        // SAFETY: the link owned a reference, so the parent is alive.
        let g = unsafe { &*parent };
        g.links.set(g.links.get() - 1);
        if freeable(parent, g) {
            p = parent;
        } else {
            if g.links.get() == 0 && g.handles.get() == 0 {
                // Unreferenced but suspended (a kill it refused) or running: dispose decides.
                // SAFETY: no handles left.
                unsafe { dispose(parent) };
            }
            return;
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(stack) = self.stack.get_mut().take() {
            stack.recycle();
        }
    }
}

/// Gives up the thread's handle on its root at thread exit; frees the root if nothing else
/// references it.
///
/// # Safety
/// `root` is this thread's root, no longer recorded as current, and the caller owns the
/// thread's handle.
pub(crate) unsafe fn release_root(root: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*root };
    g.handles.set(g.handles.get() - 1);
    if g.handles.get() == 0 && g.links.get() == 0 {
        // SAFETY: nothing references it and no code runs on it as a greenlet any more.
        unsafe { drop(Box::from_raw(root as *mut Inner)) };
    }
}

/// What a switch carries.
enum Msg {
    Value(Value),
    Throw(Payload),
}

/// Handed from the switching context to the resumed one, through one register. It lives on
/// the switcher's stack, which stays mapped until the receiver has moved the message out.
struct Transfer {
    from: *const Inner,
    msg: ManuallyDrop<Msg>,
}

/// Delivers `msg` from `origin` towards `target` by the rules of `semantics.md` and, when
/// control must move, switches. Returns what this greenlet receives when it next runs.
///
/// # Safety
/// `origin` is the running greenlet (possibly dying); `target` is a live greenlet of this thread.
#[inline(never)]
unsafe fn deliver(mut origin: *const Inner, mut target: *const Inner, mut msg: Msg) -> Msg {
    let current = thread::current();
    loop {
        // SAFETY (whole loop): greenlets on a parent chain are kept alive by the child's
        // reference; `target` starts live by the caller's guarantee.
        unsafe {
            // Rule 1/4, dead target: the first non-dead ancestor receives in its place. A root
            // is never dead, so this ends.
            while (*target).state.get() == State::Dead {
                target = (*target).parent.get();
            }
            if target == origin {
                // Switching to the running greenlet: nothing happens.
                return msg;
            }
            if thread::tracing() {
                observe(origin, target, &mut msg);
            }
            if (*target).state.get() == State::Unstarted && matches!(msg, Msg::Throw(_)) {
                // Rule 4: a panic into an unstarted greenlet kills it without running its body,
                // and climbs to its parent.
                die_unstarted(target, &msg);
                if let Msg::Throw(p) = &msg
                    && p.is::<GreenletExit>()
                {
                    // Rule 5: the exit escaped (never entered) its body, so the parent gets
                    // it as a value, as in Python.
                    msg = Msg::Value(Value::new(GreenletExit));
                }
                origin = target;
                target = (*target).parent.get();
                continue;
            }
            if target == current {
                // A panic climbing from greenlets that died unstarted came back to us.
                return msg;
            }
            return switch_to(current, target, msg);
        }
    }
}

/// Marks an unstarted greenlet dead (a panic reached it before it ran) and returns its stack
/// to the pool.
///
/// # Safety
/// `g` is a live unstarted greenlet of this thread.
unsafe fn die_unstarted(g: *const Inner, msg: &Msg) {
    // SAFETY: forwarded; an unstarted greenlet has no frames on its stack.
    unsafe {
        (*g).state.set(State::Dead);
        if let Some(stack) = (*(*g).stack.get()).take() {
            stack.recycle();
        }
    }
    if thread::recording() {
        recorder::finish(g, outcome(msg));
    }
}

/// How a greenlet ended, for the trace, from what it hands its parent.
fn outcome(msg: &Msg) -> crate::trace::Outcome {
    use crate::trace::Outcome;
    match msg {
        Msg::Value(v) if v.is_greenlet_exit() => Outcome::Killed,
        Msg::Value(v) => Outcome::Returned { value: v.summary() },
        Msg::Throw(p) if p.is::<GreenletExit>() => Outcome::Killed,
        Msg::Throw(p) => Outcome::Panicked {
            message: panic_message(&**p),
        },
    }
}

/// Tells the tracer and the recorder that control passes from `origin` to `target`. A
/// panicking tracer turns the message into that panic.
///
/// # Safety
/// Both are live greenlets of this thread.
#[cold]
unsafe fn observe(origin: *const Inner, target: *const Inner, msg: &mut Msg) {
    if thread::tracer_installed() {
        // SAFETY: forwarded from the caller.
        if let Err(payload) = unsafe { call_tracer(origin, target, msg) } {
            *msg = Msg::Throw(payload);
        }
    }
    if thread::recording() {
        let what = match msg {
            Msg::Value(v) => Ok(v.summary()),
            Msg::Throw(p) => Err(panic_message(&**p)),
        };
        recorder::transfer(origin, target, what);
    }
}

/// Calls the tracer with `origin → target`; a panicking tracer is removed and its payload
/// returned, to be raised in the target.
#[cold]
unsafe fn call_tracer(
    origin: *const Inner,
    target: *const Inner,
    msg: &Msg,
) -> Result<(), Payload> {
    let Some(tracer) = thread::tracer() else {
        return Ok(());
    };
    // SAFETY: both are live greenlets of this thread; the handles own a reference each.
    let (origin, target) = unsafe { (Greenlet::from_ptr(origin), Greenlet::from_ptr(target)) };
    let event = match msg {
        Msg::Value(_) => Event::Switch { origin, target },
        Msg::Throw(_) => Event::Throw { origin, target },
    };
    panic::catch_unwind(AssertUnwindSafe(|| tracer.call(&event))).inspect_err(|_| {
        thread::set_tracer(None);
    })
}

/// The switch itself: suspend `current`, run `target`, and come back with what we receive.
///
/// # Safety
/// `current` is the running greenlet; `target` is a live unstarted or suspended greenlet of
/// this thread whose saved stack pointer is valid.
#[inline(always)]
unsafe fn switch_to(current: *const Inner, target: *const Inner, msg: Msg) -> Msg {
    // SAFETY: both are live greenlets of this thread (caller's guarantee).
    let (cur, tgt) = unsafe { (&*current, &*target) };
    if cur.state.get() == State::Running {
        cur.state.set(State::Suspended);
    }
    tgt.state.set(State::Running);
    thread::set_current(target);
    let mut transfer = Transfer {
        from: current,
        msg: ManuallyDrop::new(msg),
    };
    // SAFETY: `tgt.sp` is a context saved by `arch::switch` or made by `init_stack` on the
    // target's stack, which is mapped (it is unstarted or suspended). `transfer` stays valid
    // until the receiver moves the message out, first thing, while we are suspended.
    let received = unsafe {
        arch::switch(
            cur.sp.as_ptr(),
            tgt.sp.get(),
            &mut transfer as *mut Transfer as usize,
        )
    };
    // We run again: someone switched to us and set us current.
    // SAFETY: `received` points to the resumer's live Transfer.
    let msg = unsafe { receive(received) };
    // Rule 9: an injected function runs on our stack right before we resume; its panic is
    // raised here as if thrown.
    // SAFETY: peeking at the slot without taking it (a take would write it on every switch);
    // nothing else touches it during this read.
    if unsafe { (*cur.inject.as_ptr()).is_some() } {
        run_injected(cur);
    }
    msg
}

#[cold]
fn run_injected(g: &Inner) {
    if let Some(f) = g.inject.take() {
        f();
    }
}

/// Moves the message out of the sender's transfer and tidies up after the sender.
///
/// # Safety
/// `t` points to a live `Transfer` whose message has not been taken.
#[inline(always)]
unsafe fn receive(t: usize) -> Msg {
    let t = t as *mut Transfer;
    // SAFETY: forwarded from the caller; the message is taken exactly once.
    let (from, msg) = unsafe { ((*t).from, ManuallyDrop::take(&mut (*t).msg)) };
    // SAFETY: the sender is live until we dispose of it here.
    unsafe { after_switch(from, msg) }
}

/// Runs in the greenlet that just got control: recycles the stack of a sender that died,
/// disposes of a sender that lost its last handle while it ran, and answers backtrace probes.
/// Returns the message to act on.
///
/// # Safety
/// `from` is the live greenlet (or this thread's probe sentinel) that switched to us.
#[inline(always)]
unsafe fn after_switch(from: *const Inner, msg: Msg) -> Msg {
    // SAFETY: forwarded from the caller.
    let f = unsafe { &*from };
    // The probe sentinel is "dead", so probes cost the fast path nothing.
    if f.state.get() == State::Dead || f.handles.get() == 0 {
        // SAFETY: forwarded from the caller.
        unsafe { after_switch_slow(from, msg) }
    } else {
        msg
    }
}

#[cold]
unsafe fn after_switch_slow(from: *const Inner, msg: Msg) -> Msg {
    if from == thread::probe_sentinel(new_probe_sentinel) {
        // SAFETY: only `Greenlet::backtrace` sends from the sentinel, with a ProbeRequest.
        return unsafe { answer_probe(msg) };
    }
    // SAFETY: forwarded from the caller.
    let f = unsafe { &*from };
    if f.state.get() == State::Dead {
        // SAFETY: a dead greenlet never runs on its stack again, and we have left it.
        if let Some(stack) = unsafe { (*f.stack.get()).take() } {
            stack.recycle();
        }
    }
    if f.handles.get() == 0 {
        // SAFETY: unreferenced, and no longer running.
        unsafe { dispose(from) };
    }
    msg
}

/// A request, sent from the probe sentinel, for a suspended greenlet's return addresses.
struct ProbeRequest {
    requester: *const Inner,
    reply: *mut Vec<usize>,
}

/// A greenlet that is never switched to: a switch "from" it asks the target for its frames.
/// It is dead, so the fast path's one check sends probes to the slow path.
fn new_probe_sentinel() -> *const Inner {
    let p = Inner::new_root();
    // SAFETY: just made, not shared.
    unsafe { (*p).state.set(State::Dead) };
    p
}

/// Runs on a suspended greenlet's stack: captures its frames for the requester, switches back,
/// and then waits like the switch it was suspended in, returning what that switch receives.
///
/// # Safety
/// `msg` is the ProbeRequest of a requester that is waiting for the reply.
unsafe fn answer_probe(msg: Msg) -> Msg {
    let Msg::Value(v) = msg else {
        unreachable!("probes carry a request")
    };
    let req: ProbeRequest = v.take();
    // SAFETY: the requester waits, so its reply slot is alive.
    unsafe { *req.reply = crate::trace::capture_frames() };
    let me = thread::current();
    // SAFETY: the requester is suspended in `Greenlet::backtrace`, waiting for this switch.
    unsafe { switch_to(me, req.requester, Msg::Value(Value::unit())) }
}

/// First code on a new stack: run the body, then hand its result to the parent (rules 2, 3, 5).
unsafe extern "C" fn entry(arg: usize, data: usize) -> ! {
    let me = data as *const Inner;
    // SAFETY: the first switch into us passes its Transfer.
    let msg = unsafe { receive(arg) };
    // SAFETY: we are the running greenlet; our Inner lives while we run.
    let result = unsafe { run_body(&*me, msg) };
    // SAFETY: still us; after this, we are dead and our stack is left for good.
    unsafe {
        (*me).state.set(State::Dead);
        if thread::recording() {
            recorder::finish(me, outcome(&result));
        }
        let parent = (*me).parent.get();
        deliver(me, parent, result);
    }
    // A dead greenlet is never resumed.
    std::process::abort()
}

/// Runs an injected function and the body, catching every panic (nothing unwinds past the
/// entry). A `GreenletExit` that escapes is turned into a value (rule 5).
fn run_body(me: &Inner, msg: Msg) -> Msg {
    let Msg::Value(arg) = msg else {
        unreachable!("a panic is never delivered to an unstarted greenlet's stack")
    };
    let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
        if let Some(f) = me.inject.take() {
            f();
        }
        // SAFETY: the body is only taken or replaced while the greenlet is dead or unstarted,
        // never while it runs.
        let body = unsafe { (*me.body.get()).as_mut() }.expect("greenlet without a body");
        body(arg)
    }));
    match outcome {
        Ok(v) => Msg::Value(v),
        Err(p) if p.is::<GreenletExit>() => Msg::Value(Value::new(GreenletExit)),
        Err(p) => Msg::Throw(p),
    }
}

/// Switches to a suspended `target` as if from `sentinel`, which makes it answer `req` and
/// switch straight back.
///
/// # Safety
/// `target` is a live suspended greenlet of this thread; `sentinel` is the probe sentinel.
unsafe fn probe(sentinel: *const Inner, target: *const Inner, req: ProbeRequest) {
    let current = thread::current();
    // SAFETY: both live; same bookkeeping as `switch_to`, with the sentinel named as sender.
    let (cur, tgt) = unsafe { (&*current, &*target) };
    cur.state.set(State::Suspended);
    tgt.state.set(State::Running);
    thread::set_current(target);
    let mut transfer = Transfer {
        from: sentinel,
        msg: ManuallyDrop::new(Msg::Value(Value::new(req))),
    };
    // SAFETY: as in `switch_to`: the target's context is valid and `transfer` outlives its read.
    let received = unsafe {
        arch::switch(
            cur.sp.as_ptr(),
            tgt.sp.get(),
            &mut transfer as *mut Transfer as usize,
        )
    };
    // SAFETY: the target answered with a Transfer of its own.
    let answer = unsafe { receive(received) };
    debug_assert!(matches!(answer, Msg::Value(_)));
}

/// Throws `payload` into `target` from the running greenlet (rule 4).
///
/// # Safety
/// `target` is a live greenlet of this thread.
unsafe fn throw_raw(target: *const Inner, payload: Payload) -> Value {
    // SAFETY: forwarded from the caller.
    let msg = if unsafe { (*target).state.get() } == State::Dead && payload.is::<GreenletExit>() {
        // Killing a dead greenlet is a plain return of GreenletExit (Python's rule).
        Msg::Value(Value::new(GreenletExit))
    } else {
        Msg::Throw(payload)
    };
    let current = thread::current();
    // SAFETY: `current` runs; `target` is live.
    unwrap_msg(unsafe { deliver(current, target, msg) })
}

/// A received value, or the received panic resumed here.
#[inline(always)]
fn unwrap_msg(msg: Msg) -> Value {
    match msg {
        Msg::Value(v) => v,
        Msg::Throw(p) => panic::resume_unwind(p),
    }
}

fn describe(g: &Inner) -> String {
    format!("'{}' (#{})", g.name.as_deref().unwrap_or("<unnamed>"), g.id)
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else if p.is::<GreenletExit>() {
        "GreenletExit".to_string()
    } else {
        "<panic payload that is not a string>".to_string()
    }
}

/// A handle to a greenlet: a symmetric, stackful coroutine with its own guarded stack.
///
/// Cloning gives another handle to the same greenlet. Handles are neither `Send` nor `Sync`:
/// a greenlet belongs to the thread that created it. When the last handle to a suspended
/// greenlet is dropped, the greenlet is killed (its stack unwinds, every `Drop` runs) and
/// control comes back to the dropper.
///
/// ```
/// use greenlet::{root, Greenlet};
///
/// let g = Greenlet::new(|first| {
///     let n: i32 = first.take();
///     let next: i32 = root().switch(n + 1).take(); // suspend, hand n + 1 to the root
///     next * 10                                    // returning hands this to the parent
/// });
/// assert_eq!(g.switch(1).take::<i32>(), 2);
/// assert_eq!(g.switch(5).take::<i32>(), 50);
/// assert!(g.is_dead());
/// ```
///
/// Only handles keep a suspended greenlet from being killed. A child's parent link keeps its
/// parent reachable (through [`parent`](Greenlet::parent)) but not alive: where Python's cycle
/// collector would eventually reclaim a greenlet that holds a handle to its own child, a
/// reference count of parent links never could, so dropping the last handle kills the parent
/// at once, and a child's result later climbs past it to the next live ancestor.
///
/// A handle cannot leave its thread (this does not compile):
///
/// ```compile_fail
/// fn assert_send<T: Send>(_: T) {}
/// assert_send(greenlet::current());
/// ```
///
/// ```compile_fail
/// fn assert_sync<T: Sync>(_: T) {}
/// assert_sync(greenlet::current());
/// ```
pub struct Greenlet {
    ptr: NonNull<Inner>,
    /// Handles must stay on their thread.
    _not_send: PhantomData<*const ()>,
}

impl Greenlet {
    /// Creates a greenlet that will run `body` when first switched to. Its parent is the
    /// greenlet running now, and its stack has the default size
    /// ([`DEFAULT_STACK_SIZE`](crate::DEFAULT_STACK_SIZE)).
    ///
    /// `body` receives the first value switched in; what it returns is delivered to the parent.
    /// It is `FnMut` so that [`reset`](Greenlet::reset) can run it again.
    ///
    /// # Panics
    /// If no stack can be mapped (the system is out of memory or address space); use
    /// [`Greenlet::builder`] to get that as an [`Error`].
    pub fn new<F, R>(body: F) -> Greenlet
    where
        F: FnMut(Value) -> R + 'static,
        R: 'static,
    {
        match Builder::new().spawn(body) {
            Ok(g) => g,
            Err(e) => panic!("greenlet: {e}"),
        }
    }

    /// A builder to set the name, stack size and parent of a new greenlet.
    ///
    /// ```
    /// let g = greenlet::Greenlet::builder()
    ///     .name("worker")
    ///     .stack_size(64 * 1024)
    ///     .spawn(|v| v)
    ///     .unwrap();
    /// assert_eq!(g.name(), Some("worker"));
    /// ```
    pub fn builder() -> Builder {
        Builder::new()
    }

    /// A new handle owning a new reference.
    ///
    /// # Safety
    /// `p` points to a live greenlet of this thread.
    pub(crate) unsafe fn from_ptr(p: *const Inner) -> Greenlet {
        // SAFETY: forwarded from the caller.
        unsafe { retain_handle(p) };
        Greenlet {
            // SAFETY: live greenlets are never at address 0.
            ptr: unsafe { NonNull::new_unchecked(p as *mut Inner) },
            _not_send: PhantomData,
        }
    }

    #[inline(always)]
    fn inner(&self) -> &Inner {
        // SAFETY: a handle owns a reference, so the greenlet is alive.
        unsafe { self.ptr.as_ref() }
    }

    #[inline(always)]
    fn as_ptr(&self) -> *const Inner {
        self.ptr.as_ptr()
    }

    /// Suspends the running greenlet and runs this one, handing it `v`; returns the value the
    /// running greenlet receives when it is next switched to.
    ///
    /// - Unstarted: the body starts with `v` as its argument.
    /// - Suspended: its pending `switch` returns `v`.
    /// - The running greenlet itself: returns `v` at once.
    /// - Dead: `v` goes to its first non-dead ancestor instead.
    ///
    /// `v` may be any `'static` value (a [`Value`] is passed on as it is); values of up to 16
    /// bytes do not allocate.
    ///
    /// # Panics
    /// Re-raises a panic delivered to the running greenlet while it was suspended: a `throw`
    /// into it, or a panic that escaped a child's body.
    #[inline(always)]
    pub fn switch<V: 'static>(&self, v: V) -> Value {
        let current = thread::current();
        let msg = Msg::Value(Value::new(v));
        let target = self.as_ptr();
        // The common case is inlined into the caller so that no call frame separates its code
        // from the switch (a `ret` after resuming would pop a return-stack entry pushed by
        // another context and mispredict). Everything else goes through `deliver`.
        let msg = if self.inner().state.get() <= State::Suspended && !thread::tracing() {
            // SAFETY: the target is unstarted or suspended, so it is not `current`, and this
            // handle keeps it alive.
            unsafe { switch_to(current, target, msg) }
        } else {
            // SAFETY: `current` runs; this handle keeps the target alive.
            unsafe { deliver(current, target, msg) }
        };
        unwrap_msg(msg)
    }

    /// Switches to this greenlet and raises `payload` as a panic where it is suspended
    /// (`std::panic::resume_unwind`, so no panic message is printed). It may catch it and go
    /// on; whatever is then switched back is returned.
    ///
    /// An unstarted greenlet dies at once without running its body, and the panic climbs to
    /// its parent. Throwing into a dead greenlet raises in its first non-dead ancestor. A
    /// `Box<dyn Any + Send>` payload (one caught with `catch_unwind`) is thrown as it is.
    pub fn throw<E: Any + Send>(&self, payload: E) -> Value {
        let payload: Payload = if TypeId::of::<E>() == TypeId::of::<Payload>() {
            let payload = ManuallyDrop::new(payload);
            // SAFETY: `E` is `Box<dyn Any + Send>` (same TypeId); read once, never dropped.
            unsafe { std::mem::transmute_copy::<E, Payload>(&payload) }
        } else {
            Box::new(payload)
        };
        // SAFETY: this handle keeps the target alive.
        unsafe { throw_raw(self.as_ptr(), payload) }
    }

    /// Kills the greenlet: `throw(GreenletExit)`. Its stack unwinds and, unless it catches the
    /// exit, it dies and its parent receives a [`GreenletExit`] value (which is what this
    /// returns when the parent is the caller). Killing a dead greenlet returns a
    /// `GreenletExit` value at once.
    pub fn kill(&self) -> Value {
        self.throw(GreenletExit)
    }

    /// Where this greenlet's result goes; `None` for a root.
    pub fn parent(&self) -> Option<Greenlet> {
        let p = self.inner().parent.get();
        // SAFETY: a parent link keeps the parent alive.
        (!p.is_null()).then(|| unsafe { Greenlet::from_ptr(p) })
    }

    /// Makes `parent` the greenlet that receives this one's result.
    ///
    /// # Errors
    /// [`Error::CyclicParent`] if this greenlet would become its own ancestor,
    /// [`Error::RootParent`] for a root. Nothing changes on error.
    pub fn set_parent(&self, parent: &Greenlet) -> Result<(), Error> {
        let me = self.inner();
        if me.is_root() {
            return Err(Error::RootParent);
        }
        let mut p = parent.as_ptr();
        while !p.is_null() {
            if p == self.as_ptr() {
                return Err(Error::CyclicParent);
            }
            // SAFETY: ancestors are kept alive by their children's parent links.
            p = unsafe { (*p).parent.get() };
        }
        // SAFETY: `parent` is live (its handle); the link now owns this reference.
        unsafe { retain_link(parent.as_ptr()) };
        let old = me.parent.replace(parent.as_ptr());
        if thread::recording() {
            // SAFETY: the old parent is alive until its link is released below.
            let old_id = unsafe { (*old).id };
            recorder::parent_changed(self.as_ptr(), Some(old_id), Some(parent.id()));
        }
        // SAFETY: the old link owned its reference.
        unsafe { release_link(old) };
        Ok(())
    }

    /// Whether the greenlet has been switched to since it was created or reset.
    pub fn is_started(&self) -> bool {
        self.inner().state.get() != State::Unstarted
    }

    /// Whether the body has returned or panicked.
    pub fn is_dead(&self) -> bool {
        self.inner().state.get() == State::Dead
    }

    /// Started and not dead: suspended, or running.
    pub fn is_active(&self) -> bool {
        matches!(self.inner().state.get(), State::Suspended | State::Running)
    }

    /// Whether this is the running greenlet.
    pub fn is_current(&self) -> bool {
        self.as_ptr() == thread::current()
    }

    /// Whether this is its thread's root greenlet (the thread's own stack).
    pub fn is_root(&self) -> bool {
        self.inner().is_root()
    }

    /// Schedules `f` to run once on this greenlet's stack, right before it next resumes (before
    /// its body, if unstarted). A panic in `f` is raised in the greenlet as if thrown. Several
    /// injections run in the order they were made. A dead greenlet never resumes, so `f` runs
    /// only if it is [`reset`](Greenlet::reset) and started again.
    ///
    /// ```
    /// use greenlet::{current, Greenlet};
    ///
    /// let g = Greenlet::new(|v| v);
    /// let ran_on = std::rc::Rc::new(std::cell::Cell::new(None));
    /// let seen = ran_on.clone();
    /// g.inject(move || seen.set(Some(current().id())));
    /// g.switch(());
    /// assert_eq!(ran_on.get(), Some(g.id()));
    /// ```
    pub fn inject(&self, f: impl FnOnce() + 'static) {
        let slot = &self.inner().inject;
        let f: Box<dyn FnOnce()> = match slot.take() {
            Some(before) => Box::new(move || {
                before();
                f();
            }),
            None => Box::new(f),
        };
        slot.set(Some(f));
    }

    /// Makes a dead greenlet unstarted again: the next switch runs its body from the top, on a
    /// fresh (or pooled) stack. Resetting an unstarted greenlet does nothing.
    ///
    /// # Errors
    /// [`Error::ResetActive`] if the greenlet is suspended or running (its live frames would be
    /// abandoned), [`Error::ResetRoot`] for a root, [`Error::StackAllocation`] if no stack can
    /// be mapped.
    pub fn reset(&self) -> Result<(), Error> {
        let g = self.inner();
        if g.is_root() {
            return Err(Error::ResetRoot);
        }
        match g.state.get() {
            State::Unstarted => Ok(()),
            State::Suspended | State::Running => Err(Error::ResetActive),
            State::Dead => {
                g.prepare()?;
                if thread::recording() {
                    recorder::spawn(self.as_ptr());
                }
                Ok(())
            }
        }
    }

    /// The frames of this greenlet's stack, innermost first, with function names and
    /// file:line where debug info allows (engine and runtime frames left out). `None` when it
    /// has no frames: unstarted or dead.
    ///
    /// For a suspended greenlet, the frames are captured on its own stack: control visits it
    /// for the capture and comes straight back, without running any of its code, calling a
    /// tracer, or running an injected function.
    ///
    /// ```
    /// use greenlet::{root, Greenlet};
    ///
    /// fn waiting_here() { root().switch(()); }
    /// let g = Greenlet::new(|_| waiting_here());
    /// g.switch(());
    /// let frames = g.backtrace().unwrap();
    /// assert!(frames.iter().any(|f| f.function.ends_with("waiting_here")));
    /// ```
    pub fn backtrace(&self) -> Option<Vec<crate::trace::Frame>> {
        let ips = match self.inner().state.get() {
            State::Unstarted | State::Dead => return None,
            State::Running => crate::trace::capture_frames(),
            State::Suspended => {
                let sentinel = thread::probe_sentinel(new_probe_sentinel);
                if sentinel.is_null() {
                    return None; // thread teardown
                }
                let mut reply = Vec::new();
                let req = ProbeRequest {
                    requester: thread::current(),
                    reply: &mut reply,
                };
                // SAFETY: the target is suspended; the probe leaves its state as it was, and
                // it answers by switching back to us (the requester).
                unsafe { probe(sentinel, self.as_ptr(), req) };
                reply
            }
        };
        crate::trace::symbolize(&[ips]).pop()
    }

    /// A number unique to this greenlet in the process.
    pub fn id(&self) -> u64 {
        self.inner().id
    }

    /// The name given by the builder; roots are called `"main"`.
    pub fn name(&self) -> Option<&str> {
        self.inner().name.as_deref()
    }

    /// Usable bytes of this greenlet's stack (0 for a root, which runs on its thread's stack).
    pub fn stack_size(&self) -> usize {
        self.inner().stack_size
    }
}

impl Clone for Greenlet {
    fn clone(&self) -> Greenlet {
        // SAFETY: this handle keeps the greenlet alive.
        unsafe { Greenlet::from_ptr(self.as_ptr()) }
    }
}

impl Drop for Greenlet {
    fn drop(&mut self) {
        // SAFETY: the handle owns one reference.
        unsafe { release_handle(self.as_ptr()) }
    }
}

impl PartialEq for Greenlet {
    fn eq(&self, other: &Greenlet) -> bool {
        self.ptr == other.ptr
    }
}

impl Eq for Greenlet {}

impl std::hash::Hash for Greenlet {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.ptr.hash(h)
    }
}

impl fmt::Debug for Greenlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.inner();
        let state = match g.state.get() {
            State::Unstarted => "unstarted",
            State::Suspended => "suspended",
            State::Running => "running",
            State::Dead => "dead",
        };
        f.debug_struct("Greenlet")
            .field("id", &g.id)
            .field("name", &g.name.as_deref())
            .field("state", &state)
            .finish()
    }
}

/// The greenlet running now on this thread (the root at top level).
///
/// ```
/// assert!(greenlet::current().is_root());
/// assert!(greenlet::current().parent().is_none());
/// ```
pub fn current() -> Greenlet {
    // SAFETY: the running greenlet is alive.
    unsafe { Greenlet::from_ptr(thread::current()) }
}

/// This thread's root greenlet: the thread itself, on its own stack.
pub fn root() -> Greenlet {
    // SAFETY: the root lives as long as its thread.
    unsafe { Greenlet::from_ptr(thread::root()) }
}

/// Configures a greenlet before spawning it. See [`Greenlet::builder`].
#[derive(Debug, Default)]
#[must_use = "a builder does nothing until `spawn` is called"]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    parent: Option<Greenlet>,
}

impl Builder {
    /// A builder with the defaults: no name, the default stack size, the running greenlet as
    /// parent.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the greenlet (shown in stack overflow messages, traces and `Debug`).
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// Usable stack size in bytes, rounded up to whole pages; between
    /// [`MIN_STACK_SIZE`](crate::MIN_STACK_SIZE) and [`MAX_STACK_SIZE`](crate::MAX_STACK_SIZE).
    /// Only touched pages use memory.
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// The greenlet that receives the new one's result (default: the running greenlet).
    pub fn parent(mut self, parent: &Greenlet) -> Builder {
        self.parent = Some(parent.clone());
        self
    }

    /// Creates the greenlet, unstarted, with its stack mapped (or taken from the pool).
    ///
    /// # Errors
    /// [`Error::InvalidStackSize`] or [`Error::StackAllocation`].
    pub fn spawn<F, R>(self, mut body: F) -> Result<Greenlet, Error>
    where
        F: FnMut(Value) -> R + 'static,
        R: 'static,
    {
        static LOOKUP: std::sync::Once = std::sync::Once::new();
        LOOKUP.call_once(|| crate::overflow::set_lookup(running_guard_info));

        let stack_size = stack::usable_size(self.stack_size.unwrap_or(stack::DEFAULT_STACK_SIZE))?;
        let parent = match &self.parent {
            Some(p) => p.as_ptr(),
            None => thread::current(),
        };
        // SAFETY: the parent is alive (a handle, or the running greenlet); the new greenlet's
        // link owns this reference.
        unsafe { retain_link(parent) };
        let inner = Box::new(Inner {
            sp: Cell::new(ptr::null_mut()),
            state: Cell::new(State::Unstarted),
            handles: Cell::new(1),
            links: Cell::new(0),
            parent: Cell::new(parent),
            inject: Cell::new(None),
            id: next_id(),
            name: self.name.map(String::into_boxed_str),
            stack_size,
            stack: UnsafeCell::new(None),
            body: UnsafeCell::new(Some(Box::new(move |v| Value::new(body(v))))),
        });
        let p = Box::into_raw(inner);
        let g = Greenlet {
            // SAFETY: Box::into_raw never returns null.
            ptr: unsafe { NonNull::new_unchecked(p) },
            _not_send: PhantomData,
        };
        g.inner().prepare()?;
        if thread::recording() {
            recorder::spawn(g.as_ptr());
        }
        Ok(g)
    }
}
