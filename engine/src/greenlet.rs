//! The safe API: [`Greenlet`] handles and the [`Builder`]. The rules they follow live in
//! [`crate::switch`]; the object behind a handle in [`crate::inner`].

use std::any::{Any, TypeId};
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::ptr::NonNull;

use crate::body::Body;
use crate::error::{Error, GreenletExit};
use crate::inner::{
    Inner, Payload, State, release_handle, release_link, retain_handle, retain_link,
};
use crate::stack;
use crate::switch::{self, ProbeRequest, new_probe_sentinel, probe, unthrow};
use crate::thread;
use crate::trace::recorder;
use crate::value::Value;

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
/// # Panics during a kill
///
/// A killed greenlet may catch its [`GreenletExit`] and run more code before it dies. If a
/// panic then escapes its body:
/// - after [`kill`](Greenlet::kill) (or [`throw`](Greenlet::throw)), the panic is raised in
///   its parent like any body's panic, so it comes out of `kill()` when the killer is the
///   parent;
/// - after a kill on drop (the last handle to the suspended greenlet was dropped), the dropper
///   is inside `Drop`, which must not panic: the panic is printed on stderr (`greenlet: a panic
///   escaped while killing unreferenced greenlet '<name>' (#<id>): <message>; ignored`), its
///   payload is dropped, and control returns to the dropper as usual.
///
/// A greenlet that catches a kill on drop and switches away instead of dying can no longer be
/// reached by any handle: it is leaked (`... refused to die when killed; leaked` on stderr)
/// rather than freed under its live frames, and the values on its stack are never dropped.
/// `tests/drops.rs` checks both outcomes of a panic during a kill.
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
    /// It is `FnMut` so that [`reset`](Greenlet::reset) can run it again. A closure of up to 32
    /// bytes (a few captured handles, `Rc`s or numbers) is kept inside the greenlet, so once
    /// the thread has a finished greenlet's stack and control block to reuse, spawning one
    /// makes no allocation.
    ///
    /// # Panics
    /// If no stack can be mapped (the system is out of memory or address space); use
    /// [`Greenlet::builder`] to get that as an [`Error`].
    pub fn new<F, R>(body: F) -> Greenlet
    where
        F: FnMut(Value) -> R + 'static,
        R: 'static,
    {
        match spawn(None, default_usable_size(), thread::current(), body) {
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
        let v = Value::new(v);
        let target = self.as_ptr();
        // The common case is inlined into the caller so that no call frame separates its code
        // from the switch (a `ret` after resuming would pop a return-stack entry pushed by
        // another context and mispredict). Everything else goes through `deliver`.
        if thread::flags() == 0 && self.inner().state.get() <= State::Suspended {
            // With no flag up, the thread has a current greenlet (see
            // `thread::current_or_null`), and a value received by the switch proper is never a
            // panic (see `receive_slow`).
            let current = thread::current_or_null();
            debug_assert!(!current.is_null());
            debug_assert!(!v.is_thrown(), "panics are only sent by `deliver`");
            // SAFETY: the target is unstarted or suspended, so it is not `current` (which is
            // running), and this handle keeps it alive. The words are one value.
            unsafe {
                (*current).state.set(State::Suspended);
                Value::from_words(switch::switch_to_words(current, target, v))
            }
        } else {
            // SAFETY: `current` runs; this handle keeps the target alive; the words are one
            // value.
            unthrow(unsafe { Value::from_words(switch::deliver_words(target, v)) })
        }
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
        unsafe { switch::throw_raw(self.as_ptr(), payload) }
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
        self.inner().set_inject(Box::new(f));
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

/// The default stack size, which needs no checking or rounding: it is a multiple of every page
/// size (4, 16 and 64 KiB) and within bounds.
fn default_usable_size() -> usize {
    const _: () = assert!(
        stack::DEFAULT_STACK_SIZE.is_multiple_of(64 << 10)
            && stack::DEFAULT_STACK_SIZE >= crate::MIN_STACK_SIZE
            && stack::DEFAULT_STACK_SIZE <= crate::MAX_STACK_SIZE
    );
    debug_assert_eq!(
        stack::usable_size(stack::DEFAULT_STACK_SIZE).ok(),
        Some(stack::DEFAULT_STACK_SIZE)
    );
    stack::DEFAULT_STACK_SIZE
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
    pub fn spawn<F, R>(self, body: F) -> Result<Greenlet, Error>
    where
        F: FnMut(Value) -> R + 'static,
        R: 'static,
    {
        let stack_size = stack::usable_size(self.stack_size.unwrap_or(stack::DEFAULT_STACK_SIZE))?;
        let parent = match &self.parent {
            Some(p) => p.as_ptr(),
            None => thread::current(),
        };
        spawn(
            self.name.map(String::into_boxed_str),
            stack_size,
            parent,
            body,
        )
    }
}

/// A new unstarted greenlet running `body`: [`spawn_raw`], then the body written in place.
#[inline(always)]
fn spawn<F, R>(
    name: Option<Box<str>>,
    stack_size: usize,
    parent: *const Inner,
    body: F,
) -> Result<Greenlet, Error>
where
    F: FnMut(Value) -> R + 'static,
    R: 'static,
{
    let g = spawn_raw(name, stack_size, parent)?;
    g.inner().set_body(Body::new(body));
    Ok(g)
}

/// What every spawn comes down to, shared by all closure types (`Greenlet::new` comes straight
/// here, without a builder to fill in and take apart).
///
/// `parent` is a live greenlet of this thread; `stack_size` has been checked.
/// The body is set by the caller afterwards: written straight into the control block, a
/// closure is not built on the caller's stack and then copied (a copy that reads back bytes
/// just stored in narrower pieces stalls on store forwarding).
#[inline(never)]
fn spawn_raw(
    name: Option<Box<str>>,
    stack_size: usize,
    parent: *const Inner,
) -> Result<Greenlet, Error> {
    // SAFETY: the parent is alive (the caller's guarantee); the new greenlet's link owns this
    // reference.
    unsafe { retain_link(parent) };
    let p = Inner::allocate(State::Unstarted, parent, name, stack_size);
    let g = Greenlet {
        // SAFETY: allocated blocks are never at address 0.
        ptr: unsafe { NonNull::new_unchecked(p as *mut Inner) },
        _not_send: PhantomData,
    };
    g.inner().prepare()?;
    if thread::recording() {
        recorder::spawn(g.as_ptr());
    }
    Ok(g)
}
