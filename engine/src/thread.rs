//! Per-thread state: the running greenlet, the root, and whether a tracer is installed.
//!
//! Two thread-locals with different jobs. [`HOT`] is read on every switch, so it is
//! const-initialised and has no destructor: an access is a plain thread-pointer-relative load
//! with no "is it initialised yet" check. [`COLD`] owns what needs dropping at thread exit (the
//! root's reference and the tracer) and is touched only off the switch path.

use std::cell::{Cell, RefCell};
use std::ptr;

use crate::greenlet::Inner;
use crate::tracer::Tracer;

pub(crate) struct Hot {
    /// The running greenlet; null until the thread first uses greenlets.
    pub current: Cell<*const Inner>,
    /// Bit 0: a tracer is installed (`COLD.tracer`); bit 1: this thread is recording a trace.
    /// The switch path tests this one byte.
    pub tracing: Cell<u8>,
}

thread_local! {
    pub(crate) static HOT: Hot = const {
        Hot { current: Cell::new(ptr::null()), tracing: Cell::new(0) }
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
        let probe = self.probe.replace(ptr::null());
        if !probe.is_null() {
            // SAFETY: the sentinel was made by `Box::into_raw` for this thread and is only ever
            // compared against, never switched to or referenced elsewhere.
            unsafe { drop(Box::from_raw(probe as *mut Inner)) };
        }
        let root = self.root.replace(ptr::null());
        if root.is_null() {
            return;
        }
        let _ = HOT.try_with(|h| {
            h.tracing.set(0);
            // Greenlet code that runs in later thread-local destructors starts a fresh root
            // (which is then leaked, as nothing is left to free it) instead of using this one.
            if h.current.get() == root {
                h.current.set(ptr::null());
            }
        });
        // SAFETY: COLD held the thread's handle on the root, given up here exactly once; the
        // root is no longer current.
        unsafe { crate::greenlet::release_root(root) };
    }
}

/// The running greenlet of this thread, making the root on first use.
#[inline(always)]
pub(crate) fn current() -> *const Inner {
    let cur = HOT.with(|h| h.current.get());
    if cur.is_null() { init_root() } else { cur }
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

/// Whether a tracer or a recorder wants to hear about switches.
#[inline(always)]
pub(crate) fn tracing() -> bool {
    HOT.with(|h| h.tracing.get() != 0)
}

fn set_bit(bit: u8, on: bool) {
    HOT.with(|h| {
        let t = h.tracing.get();
        h.tracing.set(if on { t | bit } else { t & !bit });
    });
}

/// Records whether this thread is recording a trace.
pub(crate) fn set_recording(on: bool) {
    set_bit(RECORDING_BIT, on);
}

/// Whether this thread is recording a trace (cheap: no recorder borrow).
#[inline]
pub(crate) fn recording() -> bool {
    HOT.with(|h| h.tracing.get() & RECORDING_BIT != 0)
}

/// Whether a Python-style tracer is installed.
#[inline]
pub(crate) fn tracer_installed() -> bool {
    HOT.with(|h| h.tracing.get() & TRACER_BIT != 0)
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

pub(crate) fn tracer() -> Option<Tracer> {
    COLD.try_with(|c| c.tracer.borrow().clone()).ok().flatten()
}

pub(crate) fn set_tracer(t: Option<Tracer>) -> Option<Tracer> {
    let on = t.is_some();
    let previous = COLD.try_with(|c| c.tracer.replace(t)).ok().flatten();
    set_bit(TRACER_BIT, on);
    previous
}
