//! The floating-point control state is shared by all greenlets of a thread (the documented
//! policy: the switch saves neither MXCSR nor the x87 control word, as in corosensei and
//! Python's greenlet). x86_64 only: that is where the engine documents which registers these
//! are.
#![cfg(target_arch = "x86_64")]

use core::arch::asm;
use std::hint::black_box;

use greenlet::{Greenlet, root};

/// MXCSR rounding-control field (bits 13–14).
const MXCSR_RC_MASK: u32 = 0b11 << 13;
/// MXCSR rounding control: round toward zero.
const MXCSR_RC_TOWARD_ZERO: u32 = 0b11 << 13;
/// MXCSR sticky exception flags (bits 0–5): status, not control; inexact divisions set them.
const MXCSR_FLAGS: u32 = 0x3F;
/// x87 control word rounding-control field (bits 10–11).
const X87_RC_MASK: u16 = 0b11 << 10;
/// x87 rounding control: round toward zero.
const X87_RC_TOWARD_ZERO: u16 = 0b11 << 10;

/// 1/10 rounded to nearest (the last bit rounds up).
const TENTH_NEAREST: u64 = 0x3FB9_9999_9999_999A;
/// 1/10 rounded toward zero (truncated).
const TENTH_TOWARD_ZERO: u64 = 0x3FB9_9999_9999_9999;

fn read_mxcsr() -> u32 {
    let mut v = 0u32;
    // SAFETY: `stmxcsr` stores the 32-bit MXCSR into the 4 bytes of `v`, which the pointer
    // designates; it touches no other memory, the stack or the flags.
    unsafe {
        asm!("stmxcsr [{p}]", p = in(reg) &mut v as *mut u32, options(nostack, preserves_flags))
    };
    v
}

/// Loads MXCSR.
///
/// # Safety
/// `v` must be a valid MXCSR value (no reserved bits set), and the caller must restore the
/// default state before code that relies on it runs (Rust code assumes round-to-nearest).
unsafe fn write_mxcsr(v: u32) {
    // SAFETY: `ldmxcsr` reads 4 bytes from `&v`; the value is valid by the caller's contract.
    unsafe {
        asm!("ldmxcsr [{p}]", p = in(reg) &v as *const u32, options(nostack, readonly, preserves_flags))
    };
}

fn read_x87_cw() -> u16 {
    let mut v = 0u16;
    // SAFETY: `fnstcw` stores the 16-bit x87 control word into the 2 bytes of `v`; it touches
    // no other memory, the stack or the flags.
    unsafe {
        asm!("fnstcw [{p}]", p = in(reg) &mut v as *mut u16, options(nostack, preserves_flags))
    };
    v
}

/// Loads the x87 control word.
///
/// # Safety
/// As for [`write_mxcsr`]: a valid control word, and the default restored afterwards.
unsafe fn write_x87_cw(v: u16) {
    // SAFETY: `fldcw` reads 2 bytes from `&v`; the value is valid by the caller's contract.
    unsafe {
        asm!("fldcw [{p}]", p = in(reg) &v as *const u16, options(nostack, readonly, preserves_flags))
    };
}

/// Restores the thread's original control state when the test ends, even if it fails.
struct Restore {
    mxcsr: u32,
    x87: u16,
}

impl Restore {
    fn save() -> Restore {
        Restore {
            mxcsr: read_mxcsr(),
            x87: read_x87_cw(),
        }
    }
}

impl Drop for Restore {
    fn drop(&mut self) {
        // SAFETY: the values were read from the registers at the start of the test, so they
        // are valid, and they are the thread's default state.
        unsafe {
            write_mxcsr(self.mxcsr);
            write_x87_cw(self.x87);
        }
    }
}

/// 1.0 / 10.0 computed at run time (no constant folding), as bits.
fn tenth_bits() -> u64 {
    black_box(black_box(1.0f64) / black_box(10.0f64)).to_bits()
}

#[test]
fn fp_control_state_is_shared_by_a_threads_greenlets() {
    let restore = Restore::save();
    let original = restore.mxcsr;
    assert_eq!(
        original & MXCSR_RC_MASK,
        0,
        "the test thread starts in round-to-nearest"
    );
    assert_eq!(tenth_bits(), TENTH_NEAREST);

    let g = Greenlet::new(move |_| {
        // SAFETY: a valid MXCSR (only the rounding field differs from the value read). Rust
        // assumes round-to-nearest; the only float arithmetic done under the changed mode is
        // `tenth_bits`, on opaque operands, which is what this test observes on purpose. The
        // root restores the original value below, and the `Restore` guard does on failure.
        unsafe { write_mxcsr((original & !MXCSR_RC_MASK) | MXCSR_RC_TOWARD_ZERO) };
        let here = (read_mxcsr(), tenth_bits());
        root().switch(here);
        // Resumed: report the state the root left in place.
        (read_mxcsr(), tenth_bits())
    });

    let (in_greenlet, tenth_in_greenlet) = g.switch(()).take::<(u32, u64)>();
    assert_eq!(in_greenlet & MXCSR_RC_MASK, MXCSR_RC_TOWARD_ZERO);
    assert_eq!(tenth_in_greenlet, TENTH_TOWARD_ZERO, "the new mode rounds");

    // Back in the root: the greenlet's change is visible here.
    let in_root = read_mxcsr();
    let tenth_in_root = tenth_bits();
    assert_eq!(
        in_root & MXCSR_RC_MASK,
        MXCSR_RC_TOWARD_ZERO,
        "the root observes the rounding mode its greenlet set (MXCSR {in_root:#x})"
    );
    assert_eq!(tenth_in_root, TENTH_TOWARD_ZERO);

    // And the other way round: the root restores the default, the greenlet sees it.
    // SAFETY: `original` was read from MXCSR at the start of the test.
    unsafe { write_mxcsr(original) };
    let (back, tenth_back) = g.switch(()).take::<(u32, u64)>();
    assert_eq!(back & !MXCSR_FLAGS, original & !MXCSR_FLAGS);
    assert_eq!(tenth_back, TENTH_NEAREST);
    assert!(g.is_dead());
    assert_eq!(read_mxcsr() & !MXCSR_FLAGS, original & !MXCSR_FLAGS);
    assert_eq!(tenth_bits(), TENTH_NEAREST);
    drop(restore);
}

#[test]
fn fp_control_x87_control_word_is_shared_too() {
    let restore = Restore::save();
    let original = restore.x87;
    let g = Greenlet::new(move |_| {
        // SAFETY: only the rounding field changes; the test's `Restore` guard puts the
        // original value back. No x87 arithmetic runs in between.
        unsafe { write_x87_cw((original & !X87_RC_MASK) | X87_RC_TOWARD_ZERO) };
        read_x87_cw()
    });
    let in_greenlet = g.switch(()).take::<u16>();
    assert_eq!(in_greenlet & X87_RC_MASK, X87_RC_TOWARD_ZERO);
    let in_root = read_x87_cw();
    assert_eq!(
        in_root, in_greenlet,
        "the root observes the x87 control word its greenlet set"
    );
    drop(restore);
    assert_eq!(read_x87_cw(), original);
}
