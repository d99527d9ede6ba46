//! AArch64 (AAPCS64, Linux) context switch. Assembly and stack layout: `asm/aarch64/`.
//!
//! Floating-point control state (FPCR: rounding mode, flush-to-zero, default NaN) and the
//! cumulative exception flags in FPSR are shared by all greenlets of a thread: a greenlet that
//! changes the rounding mode changes it for whoever runs next, exactly as with corosensei and
//! Python's greenlet, and as on x86_64 (see `x86_64.rs`, where saving MXCSR and the x87
//! control word per switch was measured at about 1.1 ns more per switch). Reading and writing
//! FPCR would cost an `mrs`/`msr` pair per switch, and an `msr fpcr` can serialise the
//! floating-point pipeline on some cores, for a state almost no program changes.

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
    // SAFETY: the caller guarantees both contexts are valid. The block saves x19/x29 itself,
    // declares every other register it (or the resumed context) may change as clobbered
    // (x20-x28 here; x0-x18, x30 and v0-v31 through clobber_abi("C")), and returns with sp
    // exactly where it was (the resumer pops the 32-byte frame this block pushed). The four
    // words pass through x2-x5, which the block does not touch. It writes below sp, so
    // `nostack` is not given.
    unsafe {
        asm!(
            include_str!("../../../asm/aarch64/switch.s"),
            in("x0") save_sp,
            in("x1") target_sp,
            in("x9") link,
            inout("x2") words[0] => out_0,
            inout("x3") words[1] => out_1,
            inout("x4") words[2] => out_2,
            inout("x5") words[3] => out_3,
            out("x20") _,
            out("x21") _,
            out("x22") _,
            out("x23") _,
            out("x24") _,
            out("x25") _,
            out("x26") _,
            out("x27") _,
            out("x28") _,
            clobber_abi("C"),
        );
    }
    [out_0, out_1, out_2, out_3]
}

/// Entry trampoline: the first switch into a new stack lands here.
#[unsafe(naked)]
unsafe extern "C" fn trampoline() -> ! {
    naked_asm!(include_str!("../../../asm/aarch64/trampoline.s"))
}

/// Writes the initial frame of a new context below `top` and returns its stack pointer, to be
/// passed to [`switch`]. Switching to it calls `entry(w0, w1, w2, w3, data)` on this stack with
/// the words of that switch.
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
        top.sub(3).write(tramp);
        top.sub(4).write(0);
        top.sub(5).write(entry as *const () as usize);
        top.sub(6).write(data);
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

#[cfg(test)]
mod tests {
    //! The contract of the assembly itself, below the greenlet layer: what a new context finds
    //! on arrival, and the registers the switch (not the compiler) is responsible for.

    use super::*;
    use crate::stack::{Stack, usable_size};
    use core::ptr;

    /// Both contexts of a test: where each one's stack pointer is saved.
    struct Pair {
        main_sp: *mut u8,
        co_sp: *mut u8,
        /// The main context's link slot (a dummy: it runs on the test thread's stack).
        main_link: usize,
        /// The new stack's link slot.
        co_link: *mut usize,
    }

    /// What the new context saw on arrival in its entry function.
    #[derive(Debug, Default)]
    struct Arrival {
        arg: usize,
        data: usize,
        fp: usize,
        sp: usize,
        lr: usize,
    }

    // Thread-local so the tests may run in parallel; written by the new context.
    std::thread_local! {
        static ARRIVAL: core::cell::RefCell<Arrival> = core::cell::RefCell::default();
    }

    /// Entry that records x29, sp and x30 exactly as the trampoline left them, then continues in
    /// Rust as `record_arrival(arg, data, fp, sp, lr)`.
    #[unsafe(naked)]
    unsafe extern "C" fn probing_entry(
        _arg: usize,
        _w1: usize,
        _w2: usize,
        _w3: usize,
        _data: usize,
    ) -> ! {
        naked_asm!(
            "mov x1, x4",
            "mov x2, x29",
            "mov x3, sp",
            "mov x4, x30",
            "b {next}",
            next = sym record_arrival,
        )
    }

    unsafe extern "C" fn record_arrival(
        arg: usize,
        data: usize,
        fp: usize,
        sp: usize,
        lr: usize,
    ) -> ! {
        ARRIVAL.with(|a| {
            *a.borrow_mut() = Arrival {
                arg,
                data,
                fp,
                sp,
                lr,
            }
        });
        let pair = data as *mut Pair;
        // SAFETY: `data` is the test's live Pair; the main context is suspended in `switch`.
        unsafe {
            switch(
                &raw mut (*pair).co_sp,
                (*pair).main_sp,
                &raw mut (*pair).main_link,
                [arg + 1, 0, 0, 0],
            );
        }
        unreachable!("the test never resumes a finished probe")
    }

    #[test]
    fn a_new_context_starts_entry_with_both_words_an_aligned_sp_and_no_caller() {
        let stack = Stack::get(usable_size(64 << 10).unwrap()).unwrap();
        let mut pair = Pair {
            main_sp: ptr::null_mut(),
            co_sp: ptr::null_mut(),
            main_link: 0,
            co_link: link_slot(stack.top()),
        };
        let data = &raw mut pair as usize;
        // SAFETY: the stack is mapped and 16-byte aligned at its top; `pair` outlives both
        // switches, and the new context switches back exactly once.
        let got = unsafe {
            pair.co_sp = init_stack(stack.top(), probing_entry, data);
            switch(
                &raw mut pair.main_sp,
                pair.co_sp,
                pair.co_link,
                [41, 0, 0, 0],
            )
        };
        assert_eq!(got[0], 42);
        ARRIVAL.with(|a| {
            let a = a.borrow();
            assert_eq!((a.arg, a.data), (41, data));
            assert_eq!(
                a.fp,
                stack.top() as usize - 16,
                "x29 points at the fake frame record below the top"
            );
            assert_eq!(a.sp % 16, 0, "sp must stay 16-byte aligned");
            assert_eq!(
                a.sp,
                stack.top() as usize - 16,
                "the initial frame is popped down to the fake frame record"
            );
            // SAFETY: the link slot is the word at top - 16 of the mapped stack.
            let link = unsafe { *link_slot(stack.top()) };
            assert_eq!(
                link,
                pair.main_sp as usize + 16,
                "the switch in recorded the main context's frame record"
            );
            let tramp = trampoline as *const () as usize;
            assert!(
                (tramp..tramp + 64).contains(&a.lr),
                "entry is called from the trampoline (lr {:#x}, trampoline {tramp:#x})",
                a.lr
            );
        });
        // The context is abandoned suspended: nothing on its stack needs dropping.
        stack.recycle();
    }

    /// A switch that also sets x19 and x29 to `marks` right before switching and reports what
    /// they hold right after being resumed; the true values are kept on the stack meanwhile.
    ///
    /// # Safety
    /// As [`switch`].
    unsafe fn switch_with_marks(
        save_sp: *mut *mut u8,
        target_sp: *mut u8,
        link: *mut usize,
        arg: usize,
        marks: (usize, usize),
    ) -> (usize, (usize, usize)) {
        let (ret, x19, x29): (usize, usize, usize);
        // SAFETY: as in `switch`, whose template this wraps; the real x19/x29 are pushed first
        // and popped last, and nothing between reads memory through x29.
        unsafe {
            asm!(
                "stp x19, x29, [sp, #-16]!",
                "mov x19, x6",
                "mov x29, x7",
                include_str!("../../../asm/aarch64/switch.s"),
                "mov x6, x19",
                "mov x7, x29",
                "ldp x19, x29, [sp], #16",
                in("x0") save_sp,
                in("x1") target_sp,
                in("x9") link,
                inout("x2") arg => ret,
                inout("x6") marks.0 => x19,
                inout("x7") marks.1 => x29,
                out("x20") _,
                out("x21") _,
                out("x22") _,
                out("x23") _,
                out("x24") _,
                out("x25") _,
                out("x26") _,
                out("x27") _,
                out("x28") _,
                clobber_abi("C"),
            );
        }
        (ret, (x19, x29))
    }

    const ROUNDS: usize = 100;
    const MAIN_MARKS: (usize, usize) = (0x1919_0000_0000_0001, 0x2929_0000_0000_0001);
    const CO_MARKS: (usize, usize) = (0x1919_0000_0000_0002, 0x2929_0000_0000_0002);

    unsafe extern "C" fn marking_entry(
        arg: usize,
        _w1: usize,
        _w2: usize,
        _w3: usize,
        data: usize,
    ) -> ! {
        let pair = data as *mut Pair;
        let mut n = arg + 1;
        loop {
            // SAFETY: `data` is the test's live Pair; the main context is suspended.
            let (next, seen) = unsafe {
                switch_with_marks(
                    &raw mut (*pair).co_sp,
                    (*pair).main_sp,
                    &raw mut (*pair).main_link,
                    n,
                    CO_MARKS,
                )
            };
            // A mismatch is reported through the value: panicking here cannot unwind anywhere.
            n = if seen == CO_MARKS {
                next + 1
            } else {
                usize::MAX
            };
        }
    }

    #[test]
    fn x19_and_x29_survive_a_switch_whatever_the_other_context_left_in_them() {
        let stack = Stack::get(usable_size(64 << 10).unwrap()).unwrap();
        let mut pair = Pair {
            main_sp: ptr::null_mut(),
            co_sp: ptr::null_mut(),
            main_link: 0,
            co_link: link_slot(stack.top()),
        };
        // SAFETY: the stack is mapped and aligned at its top; `pair` outlives every switch.
        unsafe { pair.co_sp = init_stack(stack.top(), marking_entry, &raw mut pair as usize) };
        let mut n = 0;
        for round in 0..ROUNDS {
            // SAFETY: the new context is suspended (or unstarted) at `pair.co_sp`.
            let (got, seen) = unsafe {
                switch_with_marks(
                    &raw mut pair.main_sp,
                    pair.co_sp,
                    pair.co_link,
                    n,
                    MAIN_MARKS,
                )
            };
            assert_eq!(seen, MAIN_MARKS, "round {round}");
            assert_eq!(got, n + 1, "round {round}: the other side saw wrong marks");
            n = got;
        }
        stack.recycle();
    }

    /// Many integers and floats live across each switch, on both sides: they sit in x20-x28
    /// and d8-d15 in optimised builds, which the compiler must save around the asm block.
    #[test]
    fn values_live_across_switches_survive_on_both_sides() {
        #[inline(never)]
        fn churn(seed: u64, sp: (*mut *mut u8, *mut u8, *mut usize)) -> (u64, f64) {
            let mut i = [0u64; 10];
            let mut f = [0f64; 10];
            for k in 0..10 {
                i[k] = seed.wrapping_mul(k as u64 + 3);
                f[k] = seed as f64 * (k as f64 + 0.5);
            }
            // SAFETY: the caller passes a valid pair of contexts.
            unsafe { switch(sp.0, sp.1, sp.2, [seed as usize, 0, 0, 0]) };
            let mut si = 0u64;
            let mut sf = 0f64;
            for k in 0..10 {
                si = si.wrapping_add(i[k] ^ seed.wrapping_mul(k as u64 + 3));
                sf += f[k] - seed as f64 * (k as f64 + 0.5);
            }
            (si, sf)
        }

        unsafe extern "C" fn churning_entry(
            _arg: usize,
            _w1: usize,
            _w2: usize,
            _w3: usize,
            data: usize,
        ) -> ! {
            let pair = data as *mut Pair;
            let mut bad = 0usize;
            for seed in 1000.. {
                // SAFETY: the main context is suspended at `main_sp`; `pair` is live.
                let r = unsafe {
                    churn(
                        seed,
                        (
                            &raw mut (*pair).co_sp,
                            (*pair).main_sp,
                            &raw mut (*pair).main_link,
                        ),
                    )
                };
                bad += usize::from(r != (0, 0.0));
                // SAFETY: as above.
                unsafe {
                    switch(
                        &raw mut (*pair).co_sp,
                        (*pair).main_sp,
                        &raw mut (*pair).main_link,
                        [bad, 0, 0, 0],
                    )
                };
            }
            unreachable!()
        }

        let stack = Stack::get(usable_size(64 << 10).unwrap()).unwrap();
        let mut pair = Pair {
            main_sp: ptr::null_mut(),
            co_sp: ptr::null_mut(),
            main_link: 0,
            co_link: link_slot(stack.top()),
        };
        // SAFETY: as in the tests above.
        unsafe { pair.co_sp = init_stack(stack.top(), churning_entry, &raw mut pair as usize) };
        for seed in 1..=ROUNDS as u64 {
            let p = &raw mut pair;
            // SAFETY: the other context is unstarted or suspended at `co_sp`.
            let r = unsafe { churn(seed, (&raw mut (*p).main_sp, (*p).co_sp, (*p).co_link)) };
            assert_eq!(r, (0, 0.0), "main side, seed {seed}");
            // SAFETY: as above; it answers with its count of corrupted rounds.
            let bad = unsafe { switch(&raw mut pair.main_sp, pair.co_sp, pair.co_link, [0; 4]) }[0];
            assert_eq!(bad, 0, "other side, seed {seed}");
        }
        stack.recycle();
    }
}
