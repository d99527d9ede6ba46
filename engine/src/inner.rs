//! The greenlet object behind the handles: its fields, its stack, and its life (reference
//! counts, the kill of an unreferenced suspended greenlet, freeing).

use std::any::Any;
use std::cell::{Cell, UnsafeCell};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::arch;
use crate::body::Body;
use crate::error::{Error, GreenletExit};
use crate::stack::Stack;
use crate::switch::{entry, throw_raw};
use crate::thread;
use crate::trace::recorder;

/// Where a greenlet is in its life.
/// Ordered so that "can be switched to with a value right away" is `<= Suspended`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum State {
    Unstarted,
    Suspended,
    Running,
    Dead,
}

pub(crate) type Payload = Box<dyn Any + Send>;

/// The greenlet itself; handles point at it.
///
/// Two counts manage its life. `handles` counts [`Greenlet`] handles (and, for a root, its
/// thread): when it drops to zero, a suspended greenlet is killed (rule 6). `links` counts
/// children whose parent this is: they keep the `Inner` (not the stack) alive so that values
/// can climb through it, but do not keep it from being killed, which would leak any greenlet
/// holding a handle to its own child. Memory goes when both are zero and no frames are left.
/// The running greenlet holds no count of its own: if its handles drop to zero while it runs,
/// the greenlet that runs after it disposes of it (see `switch::receive_slow`).
pub(crate) struct Inner {
    /// Saved stack pointer while suspended or unstarted; written by the switch.
    pub(crate) sp: Cell<*mut u8>,
    pub(crate) state: Cell<State>,
    pub(crate) handles: Cell<usize>,
    pub(crate) links: Cell<usize>,
    /// The parent (a link reference); null only for a root.
    pub(crate) parent: Cell<*const Inner>,
    /// Runs once right before the greenlet next resumes; see [`Inner::set_inject`].
    inject: Cell<Option<Box<dyn FnOnce()>>>,
    pub(crate) id: u64,
    pub(crate) name: Option<Box<str>>,
    /// Usable stack bytes (the size the builder asked for, page-rounded); 0 for a root.
    pub(crate) stack_size: usize,
    /// The stack while unstarted, suspended or running; None for a root and once dead.
    stack: UnsafeCell<Option<Stack>>,
    /// None for a root.
    pub(crate) body: UnsafeCell<Option<Body>>,
    /// Where a switch into this greenlet records the switcher's frame record, so unwinders
    /// cross stacks (see `asm/*/trampoline.s`): its stack's link slot, or `link_dummy`.
    pub(crate) link: Cell<*mut usize>,
    /// The link slot of a greenlet without a stack of its own (a root).
    link_dummy: UnsafeCell<usize>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Ids a thread takes from [`NEXT_ID`] at a time: an atomic read-modify-write on every spawn
/// costs more than the rest of creating a greenlet's control block.
const ID_BLOCK: u64 = 256;

#[inline(always)]
fn next_id() -> u64 {
    thread::HOT.with(|h| {
        let (next, end) = h.ids.get();
        if next < end {
            h.ids.set((next + 1, end));
            next
        } else {
            let start = NEXT_ID.fetch_add(ID_BLOCK, Ordering::Relaxed);
            h.ids.set((start + 1, start + ID_BLOCK));
            start
        }
    })
}

impl Inner {
    /// A thread's root greenlet, already running, with one reference (the thread's).
    pub(crate) fn new_root() -> *const Inner {
        let p = Inner::allocate(State::Running, ptr::null(), Some("main".into()), 0);
        // SAFETY: just made; the block never moves, so the dummy's address stays valid.
        unsafe { (*p).link.set((*p).link_dummy.get()) };
        p
    }

    /// A greenlet with one handle, no stack and no body yet (see [`Inner::set_body`]), in a
    /// block of its own (see `spare`).
    ///
    /// Written field by field into the block: built as a value and moved there, the whole
    /// struct goes through a `memcpy` call on every spawn.
    #[inline(always)]
    pub(crate) fn allocate(
        state: State,
        parent: *const Inner,
        name: Option<Box<str>>,
        stack_size: usize,
    ) -> *const Inner {
        let p = crate::spare::block();
        // SAFETY: `p` is an uninitialised block for an `Inner`; every field is written once
        // below, through raw pointers (no reference to uninitialised memory is made).
        unsafe {
            (&raw mut (*p).sp).write(Cell::new(ptr::null_mut()));
            (&raw mut (*p).state).write(Cell::new(state));
            (&raw mut (*p).handles).write(Cell::new(1));
            (&raw mut (*p).links).write(Cell::new(0));
            (&raw mut (*p).parent).write(Cell::new(parent));
            (&raw mut (*p).inject).write(Cell::new(None));
            (&raw mut (*p).id).write(next_id());
            (&raw mut (*p).name).write(name);
            (&raw mut (*p).stack_size).write(stack_size);
            (&raw mut (*p).stack).write(UnsafeCell::new(None));
            (&raw mut (*p).body).write(UnsafeCell::new(None));
            (&raw mut (*p).link).write(Cell::new(ptr::null_mut()));
            (&raw mut (*p).link_dummy).write(UnsafeCell::new(0));
        }
        p
    }

    /// Takes the stack out (a dead greenlet's, to recycle it).
    pub(crate) fn take_stack(&self) -> Option<Stack> {
        // SAFETY: the stack slot is only touched on the owning thread, and never while the
        // greenlet runs on it (callers take it from dead or unstarted greenlets).
        unsafe { (*self.stack.get()).take() }
    }

    /// Gives an unstarted greenlet made without one its body.
    #[inline(always)]
    pub(crate) fn set_body(&self, body: Body) {
        // SAFETY: the body slot is only touched on the owning thread while the greenlet is not
        // running; it is empty here (made with `None`), so nothing is overwritten unseen.
        unsafe {
            debug_assert!((*self.body.get()).is_none());
            self.body.get().write(Some(body));
        }
    }

    /// Puts back a stack taken by [`Inner::take_stack`].
    pub(crate) fn put_stack(&self, stack: Stack) {
        // SAFETY: as in `take_stack`; the slot is empty (the stack was just taken from it).
        unsafe { *self.stack.get() = Some(stack) };
    }

    /// Adds `f` to the functions to run right before this greenlet next resumes (after those
    /// already there), and tells the switch path there is work.
    pub(crate) fn set_inject(&self, f: Box<dyn FnOnce()>) {
        let f: Box<dyn FnOnce()> = match self.inject.take() {
            Some(before) => Box::new(move || {
                before();
                f();
            }),
            None => {
                thread::inject_added();
                f
            }
        };
        self.inject.set(Some(f));
    }

    /// Takes the pending injected function, if any.
    pub(crate) fn take_inject(&self) -> Option<Box<dyn FnOnce()>> {
        let f = self.inject.take();
        if f.is_some() {
            thread::inject_removed();
        }
        f
    }

    pub(crate) fn is_root(&self) -> bool {
        self.parent.get().is_null()
    }

    /// The parent (null for a root).
    pub(crate) fn parent_ptr(&self) -> *const Inner {
        self.parent.get()
    }

    /// Maps (or reuses) a stack and lays out the first frame; the greenlet becomes unstarted.
    /// Inlined with the pool's fast path, so that a pooled stack goes from the pool into this
    /// greenlet in registers, with no `Result` in between.
    #[inline(always)]
    pub(crate) fn prepare(&self) -> Result<(), Error> {
        match Stack::pooled(self.stack_size) {
            Some(stack) => {
                self.install(stack);
                Ok(())
            }
            None => self.prepare_fresh(),
        }
    }

    /// [`Inner::prepare`] past the pool: a stack from a chunk.
    #[cold]
    #[inline(never)]
    fn prepare_fresh(&self) -> Result<(), Error> {
        self.install(Stack::fresh(self.stack_size)?);
        Ok(())
    }

    /// Makes `stack` this greenlet's, with the first frame laid out on it.
    #[inline(always)]
    fn install(&self, stack: Stack) {
        if thread::recording() {
            // Zeroed pages make the trace's high-water mark exact for this greenlet (a pooled
            // stack still holds its previous user's bytes). Before the first frame is written.
            stack.discard();
        }
        let top = stack.top();
        // SAFETY: the top of a fresh stack is page-aligned with the whole stack below it, and
        // the stack is stored in this greenlet, which outlives every switch into it.
        let sp = unsafe { arch::init_stack(top, entry, self as *const Inner as usize) };
        self.sp.set(sp);
        self.link.set(arch::link_slot(top));
        // SAFETY: the stack slot is only touched by the thread that owns this greenlet, and
        // never while the greenlet runs on it. It is empty: a greenlet gets a stack when made
        // and when reset, and only dead greenlets (whose stack was taken) are reset.
        unsafe {
            debug_assert!((*self.stack.get()).is_none());
            self.stack.get().write(Some(stack));
        }
        self.state.set(State::Unstarted);
    }

    /// Guard page, name, id and size of this greenlet's stack, for the overflow handler.
    pub(crate) fn guard_info(&self) -> Option<crate::overflow::GuardInfo> {
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
pub(crate) fn running_guard_info() -> Option<crate::overflow::GuardInfo> {
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
pub(crate) unsafe fn retain_handle(p: *const Inner) {
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
pub(crate) unsafe fn retain_link(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    g.links.set(g.links.get() + 1);
}

/// Drops a parent-link reference.
///
/// # Safety
/// `p` must point to a live greenlet of this thread, and the caller must own the reference.
pub(crate) unsafe fn release_link(p: *const Inner) {
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
        && p != thread::current_or_null()
}

/// A greenlet that lost its last handle (rule 6), or its last link with no handle left: kill
/// it if it is suspended, free it if nothing references it any more.
///
/// # Safety
/// `p` must point to a live greenlet of this thread with no handles.
///
/// Not cold: dropping the last handle to a finished greenlet, the end of every short-lived
/// greenlet, comes here; the kill is what is kept out of line.
#[inline(never)]
pub(crate) unsafe fn dispose(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    if p == thread::current_or_null() {
        // Running (or dying) on its own stack: whoever runs next disposes of it.
        thread::set_pending();
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
#[cold]
#[inline(never)]
unsafe fn kill_unreferenced(p: *const Inner) {
    // SAFETY: forwarded from the caller.
    let g = unsafe { &*p };
    // A handle for the duration of the kill, so nothing disposes of it meanwhile.
    g.handles.set(1);
    let cur = thread::current();
    // SAFETY: `cur` is the live running greenlet. The temporary parent link owns one reference;
    // a handle held for the duration of the kill keeps the killer itself from being disposed of
    // while it waits inside the kill (the unwinding may drop the last handle to it).
    unsafe {
        retain_link(cur);
        retain_handle(cur);
    }
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
    // SAFETY: the handle taken above; if it was the last, the running killer is disposed of
    // after it next switches away.
    unsafe { release_handle(cur) };
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
/// `freeable(p)` holds, and `p` was made by `spare::allocate`.
unsafe fn free(mut p: *const Inner) {
    loop {
        if thread::recording() {
            recorder::dropped(p);
        }
        // SAFETY: forwarded from the caller (or checked below for an ancestor).
        let parent = unsafe { (*p).parent.get() };
        // Dropping the body may run user code (captured values' Drop), which may touch other
        // greenlets; the parent link, still held, keeps the ancestors alive meanwhile.
        // SAFETY: we own the only pointer now.
        unsafe { crate::spare::release(p) };
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
        // A greenlet is usually freed dead (its stack already given back) with nothing
        // injected: two tests, no stores.
        if self.stack.get_mut().is_some() || self.inject.get_mut().is_some() {
            self.drop_stack_and_inject();
        }
    }
}

impl Inner {
    #[cold]
    fn drop_stack_and_inject(&mut self) {
        if let Some(stack) = self.stack.get_mut().take() {
            stack.recycle();
        }
        if self.inject.get_mut().take().is_some() {
            thread::inject_removed();
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
        unsafe { crate::spare::release(root) };
    }
}

pub(crate) fn describe(g: &Inner) -> String {
    format!("'{}' (#{})", g.name.as_deref().unwrap_or("<unnamed>"), g.id)
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> String {
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
