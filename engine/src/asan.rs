//! AddressSanitizer fiber annotations, compiled in with `--cfg greenlet_asan` (together with
//! nightly's `-Zsanitizer=address`; `cargo xtask ci` step `asan` does both).
//!
//! ASan keeps shadow memory for each thread's stack and a "fake stack" for frames that may be
//! used after return. A greenlet switch moves the stack pointer to another stack behind its
//! back, so without help it reports stale poison of a pooled stack's previous user as
//! `stack-use-after-scope` in the new one, and ignores `__asan_handle_no_return` on greenlet
//! stacks. `__sanitizer_start_switch_fiber` / `__sanitizer_finish_switch_fiber` tell it, around
//! each switch, which stack is about to run and hand the fake stack over; a new greenlet
//! clears what the previous user of its stack left poisoned.
//!
//! Without the cfg, [`start`], [`finish`] and [`entered`] are empty and inline to nothing.

#[cfg(greenlet_asan)]
pub(crate) use imp::*;

#[cfg(not(greenlet_asan))]
mod off {
    use crate::inner::Inner;

    /// Nothing to carry across a switch.
    pub(crate) struct Fiber;

    #[inline(always)]
    pub(crate) unsafe fn start(_current: *const Inner, _target: *const Inner) -> Fiber {
        Fiber
    }

    #[inline(always)]
    pub(crate) fn finish(_fiber: Fiber) {}

    #[inline(always)]
    pub(crate) unsafe fn entered(_me: *const Inner) {}
}

#[cfg(not(greenlet_asan))]
pub(crate) use off::*;

#[cfg(greenlet_asan)]
mod imp {
    use std::cell::Cell;
    use std::ffi::c_void;
    use std::ptr;

    use crate::inner::Inner;

    unsafe extern "C" {
        fn __sanitizer_start_switch_fiber(
            fake_stack_save: *mut *mut c_void,
            bottom: *const c_void,
            size: usize,
        );
        fn __sanitizer_finish_switch_fiber(
            fake_stack_save: *mut c_void,
            bottom_old: *mut *const c_void,
            size_old: *mut usize,
        );
        fn __asan_unpoison_memory_region(addr: *const c_void, size: usize);
    }

    thread_local! {
        /// This thread's own stack (the root's), as ASan reported it when we first left it.
        static ROOT_STACK: Cell<(usize, usize)> = const { Cell::new((0, 0)) };
        /// The greenlet that started the switch in progress.
        static LEAVING: Cell<*const Inner> = const { Cell::new(ptr::null()) };
    }

    /// The fake stack of the greenlet that switched away, to get back when it resumes.
    pub(crate) struct Fiber(*mut c_void);

    /// `(bottom, size)` of the stack `g` runs on.
    ///
    /// # Safety
    /// `g` is a live greenlet of this thread that is not running.
    unsafe fn stack_of(g: *const Inner) -> (usize, usize) {
        // SAFETY: forwarded from the caller.
        let view = unsafe { (*g).view() };
        match view.stack {
            Some(s) => {
                let r = s.usable();
                (r.start, r.end - r.start)
            }
            None => ROOT_STACK.with(Cell::get),
        }
    }

    /// Right before `current` switches to `target`.
    ///
    /// # Safety
    /// Both are live greenlets of this thread; `current` runs, `target` does not.
    #[inline(never)]
    pub(crate) unsafe fn start(current: *const Inner, target: *const Inner) -> Fiber {
        // SAFETY: forwarded from the caller.
        let (bottom, size) = unsafe { stack_of(target) };
        LEAVING.with(|l| l.set(current));
        // A greenlet that is dying never comes back, and ASan's API would destroy its fake
        // stack if given no save slot; but this function and its caller still run on that fake
        // stack until the switch (their frames are on it when use-after-return detection is
        // on), so it is kept: with `detect_stack_use_after_return=0`, as the CI step runs,
        // there is none; otherwise a dead greenlet's fake stack is leaked.
        let mut fake = ptr::null_mut();
        // SAFETY: the bounds are those of the stack the switch is about to run on.
        unsafe { __sanitizer_start_switch_fiber(&mut fake, bottom as *const c_void, size) };
        Fiber(fake)
    }

    /// Right after a switch, on the stack that now runs: take back this greenlet's fake stack
    /// and learn the bounds of the stack just left (how the root's become known).
    #[inline(never)]
    pub(crate) fn finish(fiber: Fiber) {
        let mut bottom: *const c_void = ptr::null();
        let mut size = 0usize;
        // SAFETY: `fiber` is what `start` saved for this greenlet (or null for a new one).
        unsafe { __sanitizer_finish_switch_fiber(fiber.0, &mut bottom, &mut size) };
        let left = LEAVING.with(Cell::get);
        // SAFETY: the greenlet that switched to us is alive until we have received from it.
        if !left.is_null() && unsafe { (*left).is_root() } {
            ROOT_STACK.with(|r| r.set((bottom as usize, size)));
        }
    }

    /// First code on a new greenlet's stack.
    ///
    /// # Safety
    /// `me` is the running greenlet, which has just started.
    #[inline(never)]
    pub(crate) unsafe fn entered(me: *const Inner) {
        finish(Fiber(ptr::null_mut()));
        let sp: usize;
        // SAFETY: reads the stack pointer, nothing else.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            std::arch::asm!("mov {}, rsp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        // SAFETY: reads the stack pointer, nothing else.
        #[cfg(target_arch = "aarch64")]
        unsafe {
            std::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
        };
        // SAFETY: `me` runs, so its stack is there.
        let (bottom, _) = unsafe { stack_of(me) };
        // Below the stack pointer is what earlier users of this (pooled) stack left, poison
        // included; none of it is live.
        // SAFETY: `[bottom, sp)` is mapped, unused memory of our own stack.
        unsafe { __asan_unpoison_memory_region(bottom as *const c_void, sp - bottom) };
    }
}
