//! Per-thread state: the running greenlet, the root, and whether a tracer is installed.
//!
//! Two thread-locals with different jobs. [`HOT`] is read on every switch, so it is
//! const-initialised and has no destructor: an access is a plain thread-pointer-relative load
//! with no "is it initialised yet" check. [`COLD`] owns what needs dropping at thread exit (the
//! root's reference and the tracer) and is touched only off the switch path.

use std::cell::{Cell, RefCell};
use std::ptr;

use crate::inner::Inner;
use crate::tracer::Tracer;

pub(crate) struct Hot {
    /// The running greenlet; null until the thread first uses greenlets.
    pub current: Cell<*const Inner>,
    /// Anything but the common case, one bit each: a tracer is installed (`COLD.tracer`), this
    /// thread is recording a trace, or a switch's receiver has work to do (see `PENDING`). The
    /// switch path tests this one byte on each side.
    pub flags: Cell<u8>,
    /// Greenlets of this thread with an injected function waiting; while non-zero, `PENDING`
    /// stays set so each resume checks for one.
    pub injects: Cell<usize>,
    /// Where the out-of-line slow paths leave the words of the value they return (see
    /// `switch::switch_to_words`): three separate words, so that writes and reads are the same
    /// 8-byte size and store forwarding works.
    pub ret: [Cell<usize>; 3],
    /// Greenlet ids this thread may hand out next: `[next, end)` (see `inner::next_id`).
    pub ids: Cell<(u64, u64)>,
}

thread_local! {
    pub(crate) static HOT: Hot = const {
        Hot {
            current: Cell::new(ptr::null()),
            flags: Cell::new(0),
            injects: Cell::new(0),
            ret: [Cell::new(0), Cell::new(0), Cell::new(0)],
            ids: Cell::new((0, 0)),
        }
    };
    static COLD: Cold = const {
        Cold { root: Cell::new(ptr::null()), tracer: RefCell::new(None), probe: Cell::new(ptr::null()) }
    };
}

struct Cold {
    root: Cell<*const Inner>,
    tracer: RefCell<Option<Tracer>>,
    /// Made on first use by `Greenlet::backtrace`; see `greenlet::probe_sentinel`.
    probe: Cell<*const Inner>,
}

impl Drop for Cold {
    fn drop(&mut self) {
        // Control blocks freed from here on go straight back to the allocator.
        crate::spare::close();
        let probe = self.probe.replace(ptr::null());
        if !probe.is_null() {
            // SAFETY: the sentinel was made by `Inner::new_root` for this thread and is only
            // ever compared against, never switched to or referenced elsewhere.
            unsafe { crate::spare::release(probe) };
        }
        let root = self.root.replace(ptr::null());
        if root.is_null() {
            return;
        }
        let _ = HOT.try_with(|h| {
            h.flags.set(0);
            // Greenlet code that runs in later thread-local destructors starts a fresh root
            // (which is then leaked, as nothing is left to free it) instead of using this one.
            if h.current.get() == root {
                h.current.set(ptr::null());
                // Keeps switches off the fast path, which assumes a current greenlet, until
                // a fresh root exists (the slow path makes it, and its receive clears this).
                h.flags.set(PENDING_BIT);
            }
        });
        // SAFETY: COLD held the thread's handle on the root, given up here exactly once; the
        // root is no longer current.
        unsafe { crate::inner::release_root(root) };
    }
}

/// The running greenlet of this thread, making the root on first use.
#[inline(always)]
pub(crate) fn current() -> *const Inner {
    let cur = HOT.with(|h| h.current.get());
    if cur.is_null() { init_root() } else { cur }
}

/// The running greenlet, or null if the thread has none (yet, or any more), without making a
/// root. It is never null while the thread's `flags` are all clear and a handle of this
/// thread exists: `Cold`'s destructor raises a flag when it nulls `current` at thread exit
/// (and before a thread's first greenlet, no handle of it exists).
#[inline(always)]
pub(crate) fn current_or_null() -> *const Inner {
    HOT.with(|h| h.current.get())
}

/// Records `g` as the running greenlet.
#[inline(always)]
pub(crate) fn set_current(g: *const Inner) {
    HOT.with(|h| h.current.set(g));
}

/// The root greenlet of this thread (making it on first use).
pub(crate) fn root() -> *const Inner {
    current();
    let root = COLD.try_with(|c| c.root.get()).unwrap_or(ptr::null());
    if root.is_null() {
        // Only during thread teardown: the root made then is the current greenlet.
        HOT.with(|h| h.current.get())
    } else {
        root
    }
}

#[cold]
fn init_root() -> *const Inner {
    // Every thread makes its root before its first spawn, so the overflow handler can name
    // the greenlet of any guard page hit from the first stack on.
    static LOOKUP: std::sync::Once = std::sync::Once::new();
    LOOKUP.call_once(|| crate::overflow::set_lookup(crate::inner::running_guard_info));
    crate::overflow::ensure_altstack();
    let root = Inner::new_root();
    set_current(root);
    // COLD's reference keeps the root alive for the thread's life. If COLD is already gone
    // (thread teardown), the root is leaked rather than freed under code still running on it.
    let _ = COLD.try_with(|c| c.root.set(root));
    crate::trace::autostart();
    root
}

const TRACER_BIT: u8 = 1;
const RECORDING_BIT: u8 = 2;
/// The greenlet that receives the next switch has something to do besides taking the value:
/// recycle a dead sender's stack, dispose of a sender that lost its last handle, answer a
/// backtrace probe, or run an injected function. Set by whoever creates the work, cleared by
/// the receiver.
const PENDING_BIT: u8 = 4;

/// Leaves a slow path's result words for [`take_ret`].
#[inline]
pub(crate) fn put_ret(w: [usize; 3]) {
    HOT.with(|h| {
        h.ret[0].set(w[0]);
        h.ret[1].set(w[1]);
        h.ret[2].set(w[2]);
    });
}

/// The words a slow path left with [`put_ret`].
#[inline(always)]
pub(crate) fn take_ret() -> [usize; 3] {
    HOT.with(|h| [h.ret[0].get(), h.ret[1].get(), h.ret[2].get()])
}

/// All the flags: zero in the common case.
#[inline(always)]
pub(crate) fn flags() -> u8 {
    HOT.with(|h| h.flags.get())
}

/// Tracing compiled out, for measuring what it costs compiled in (`cargo xtask bench` builds
/// the switch benchmark once with `--cfg greenlet_no_tracing`): the bits are never set, so no
/// tracer or recorder ever hears of a switch. Not a supported configuration otherwise.
const NO_TRACING: bool = cfg!(greenlet_no_tracing);

/// Whether a tracer or a recorder wants to hear about switches.
#[inline(always)]
pub(crate) fn tracing() -> bool {
    !NO_TRACING && HOT.with(|h| h.flags.get() & (TRACER_BIT | RECORDING_BIT) != 0)
}

fn set_bit(bit: u8, on: bool) {
    HOT.with(|h| {
        let t = h.flags.get();
        h.flags.set(if on { t | bit } else { t & !bit });
    });
}

/// Tells the next receiver of a switch that it has work (see `PENDING_BIT`).
#[inline]
pub(crate) fn set_pending() {
    set_bit(PENDING_BIT, true);
}

/// The receiver took on the pending work.
#[inline]
pub(crate) fn clear_pending() {
    set_bit(PENDING_BIT, false);
}

/// Keeps `PENDING` set while injected functions wait (never clears it: a stale bit costs one
/// slow path, a lost one would skip work).
#[inline]
pub(crate) fn refresh_pending() {
    if HOT.with(|h| h.injects.get()) > 0 {
        set_pending();
    }
}

/// Whether any greenlet of this thread has an injected function waiting.
#[inline(always)]
pub(crate) fn injections_waiting() -> bool {
    HOT.with(|h| h.injects.get()) > 0
}

/// A greenlet got an injected function.
pub(crate) fn inject_added() {
    let _ = HOT.try_with(|h| h.injects.set(h.injects.get() + 1));
    set_pending();
}

/// A greenlet's injected function was taken (to run, or dropped with the greenlet).
pub(crate) fn inject_removed() {
    let _ = HOT.try_with(|h| h.injects.set(h.injects.get().saturating_sub(1)));
}

/// Records whether this thread is recording a trace.
pub(crate) fn set_recording(on: bool) {
    set_bit(RECORDING_BIT, on && !NO_TRACING);
}

/// Whether this thread is recording a trace (cheap: no recorder borrow).
#[inline]
pub(crate) fn recording() -> bool {
    !NO_TRACING && HOT.with(|h| h.flags.get() & RECORDING_BIT != 0)
}

/// Whether a Python-style tracer is installed.
#[inline]
pub(crate) fn tracer_installed() -> bool {
    !NO_TRACING && HOT.with(|h| h.flags.get() & TRACER_BIT != 0)
}

/// This thread's probe sentinel, made with `make` on first use; null during thread teardown.
pub(crate) fn probe_sentinel(make: fn() -> *const Inner) -> *const Inner {
    COLD.try_with(|c| {
        if c.probe.get().is_null() {
            c.probe.set(make());
        }
        c.probe.get()
    })
    .unwrap_or(ptr::null())
}

/// Whether `p` is this thread's probe sentinel (without making one).
pub(crate) fn is_probe_sentinel(p: *const Inner) -> bool {
    COLD.try_with(|c| c.probe.get() == p).unwrap_or(false)
}

pub(crate) fn tracer() -> Option<Tracer> {
    COLD.try_with(|c| c.tracer.borrow().clone()).ok().flatten()
}

pub(crate) fn set_tracer(t: Option<Tracer>) -> Option<Tracer> {
    let on = t.is_some();
    let previous = COLD.try_with(|c| c.tracer.replace(t)).ok().flatten();
    set_bit(TRACER_BIT, on && !NO_TRACING);
    previous
}
