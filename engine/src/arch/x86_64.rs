//! x86_64 System V context switch. Assembly and stack layout: `asm/x86_64/`.
//!
//! Floating-point control state (MXCSR, x87 control word) is shared by all greenlets of a
//! thread: a greenlet that changes the rounding mode changes it for whoever runs next, exactly
//! as with corosensei and Python's greenlet. Saving and restoring both per switch
//! (`stmxcsr`/`fnstcw` + `ldmxcsr`/`fldcw`) was measured with `cargo bench --bench switch`
//! (2026-11, this project's 2-vCPU EPYC machine, same run): a round trip went from 7.1–7.5 ns
//! to 9.3–9.7 ns, about 1.1 ns more per switch, more than corosensei's entire switch, for a
//! state almost no program changes. The
//! test `fp_control_state_is_shared_by_a_threads_greenlets` pins this behaviour.

use super::{EntryFn, Words};
use core::arch::{asm, naked_asm};

/// Saves the running context, stores its stack pointer in `*save_sp`, and resumes the context
/// whose stack pointer is `target_sp`, which receives `words`. Returns the words handed over by
/// whichever context later resumes this one.
///
/// `link` is the target stack's link slot (see [`init_stack`]), which receives the address of
/// this context's frame record so that unwinders cross from the target's stack into ours.
///
/// # Safety
/// `save_sp` and `link` must be writable; `target_sp` must be a context saved by this
/// function or made by [`init_stack`] on a stack that is still mapped, and not resumed since.
#[inline(always)]
pub(crate) unsafe fn switch(
    save_sp: *mut *mut u8,
    target_sp: *mut u8,
    link: *mut usize,
    words: Words,
) -> Words {
    let (out_0, out_1, out_2, out_3): (usize, usize, usize, usize);
    // SAFETY: the caller guarantees both contexts are valid. The block saves rbx/rbp itself,
    // declares every other register it (or the resumed context) may change as clobbered, and
    // returns with rsp exactly where it was (the pops mirror the pushes when we are resumed).
    // The four words pass through rdx, rcx, r8 and r9, which the block does not touch.
    // It pushes onto the stack, so `nostack` is not given and the red zone is left alone.
    unsafe {
        asm!(
            include_str!("../../../asm/x86_64/switch.s"),
            in("rdi") save_sp,
            in("rsi") target_sp,
            in("r10") link,
            inout("rdx") words[0] => out_0,
            inout("rcx") words[1] => out_1,
            inout("r8") words[2] => out_2,
            inout("r9") words[3] => out_3,
            out("r12") _,
            out("r13") _,
            out("r14") _,
            out("r15") _,
            clobber_abi("C"),
        );
    }
    [out_0, out_1, out_2, out_3]
}

/// Entry trampoline: the first switch into a new stack lands here.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(include_str!("../../../asm/x86_64/trampoline.s"))
}

/// Writes the initial frame of a new context below `top` and returns its stack pointer, to be
/// passed to [`switch`]. Switching to it calls `entry(w0, w1, w2, w3, data)` on this stack with
/// the words of that switch.
///
/// The stack's link slot is [`link_slot`]`(top)`: pass it to every [`switch`] into this stack.
///
/// # Safety
/// `top` must be 16-byte aligned with at least 48 writable bytes below it, on a stack that
/// stays mapped for as long as the context may run.
pub(crate) unsafe fn init_stack(top: *mut u8, entry: EntryFn, data: usize) -> *mut u8 {
    debug_assert_eq!(top as usize % super::STACK_ALIGN, 0);
    let top = top.cast::<usize>();
    let tramp = trampoline as *const () as usize;
    // SAFETY: the caller guarantees 48 writable bytes below `top`; layout in trampoline.s.
    unsafe {
        // A return address inside the trampoline (a walker looks up `address - 1`).
        top.sub(1).write(tramp + 4);
        top.sub(2).write(0);
        top.sub(3).write(entry as *const () as usize);
        top.sub(4).write(data);
        top.sub(5).write(tramp);
        top.sub(6).write(0);
        top.sub(6).cast()
    }
}

/// Where a switch into the stack whose top is `top` records the switcher's frame record.
pub(crate) fn link_slot(top: *mut u8) -> *mut usize {
    top.cast::<usize>().wrapping_sub(2)
}

/// The entry trampoline's address: the bottom frame of every greenlet stack.
pub(crate) fn trampoline_address() -> usize {
    trampoline as *const () as usize
}
