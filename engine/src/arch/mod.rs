//! The platform layer: switching stacks on one architecture.
//!
//! Each architecture module provides the same three items, and knows nothing of greenlets:
//! - [`switch`]: save the running context on its own stack, resume another, hand it four words
//!   in registers;
//! - [`init_stack`]: lay out a fresh stack so that the first switch into it calls an entry
//!   function with the handed words;
//! - [`EntryFn`]: the signature of that entry function.
//!
//! The assembly itself lives in `asm/<arch>/` at the repository root, with the stack layout of
//! a suspended context and the reason each register is (or is not) saved. wasm32 has a
//! runtime module there instead (`asm/wasm/greenlet_rt.wat`); see `wasm32.rs`.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{init_stack, link_slot, switch, trampoline_address};

#[cfg(target_arch = "aarch64")]
mod aarch64;
#[cfg(target_arch = "aarch64")]
pub(crate) use aarch64::{init_stack, link_slot, switch, trampoline_address};

// wasm32 has no assembly: the switch is the WebAssembly stack-switching proposal, done by the
// runtime module in `asm/wasm/`, and each stack also owns a continuation handle to give back.
#[cfg(target_arch = "wasm32")]
mod wasm32;
#[cfg(target_arch = "wasm32")]
pub(crate) use wasm32::{HEADER, init_stack, link_slot, release_stack, switch};

#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "aarch64",
    target_arch = "wasm32"
)))]
compile_error!("greenlet supports x86_64, aarch64 and wasm32 only");

/// The four machine words a switch hands to the resumed context, in registers.
pub(crate) type Words = [usize; 4];

/// Runs first on a new stack: `w0..w3` are the words handed by the first switch, `data` the
/// word given to [`init_stack`]. It must never return: a greenlet leaves its stack by
/// switching.
#[cfg(not(target_arch = "wasm32"))]
pub(crate) type EntryFn =
    unsafe extern "C" fn(w0: usize, w1: usize, w2: usize, w3: usize, data: usize) -> !;
/// On wasm32 the entry may be unwound through when its continuation is reused (see
/// `wasm32.rs`), so it is "C-unwind".
#[cfg(target_arch = "wasm32")]
pub(crate) type EntryFn =
    unsafe extern "C-unwind" fn(w0: usize, w1: usize, w2: usize, w3: usize, data: usize) -> !;

/// Alignment of a stack top given to [`init_stack`].
pub(crate) const STACK_ALIGN: usize = 16;
