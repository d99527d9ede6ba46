//! wasm32: switching with the WebAssembly stack-switching proposal, through a small runtime.
//!
//! WebAssembly code cannot see or move its own call stack, so the switch itself lives in a
//! hand-written runtime module, `asm/wasm/greenlet_rt.wat`, that the host instantiates next to
//! this program and that this crate imports as module `greenlet_rt`:
//! - `new(entry, data, shadow_top) -> handle` gives a greenlet a continuation (from the
//!   runtime's pool of parked ones when it has one) that will call `entry(w0, w1, w2, w3,
//!   data)` with the words of the first switch into it, on a shadow stack starting at
//!   `shadow_top`;
//! - `switch(save, target, w0, w1, w2, w3, out)` stores the running greenlet's handle at
//!   `save`, switches to the continuation `target` handing it the four words, and, once some
//!   greenlet switches back, stores the four words it was handed at `out`;
//! - `release(handle)`: the greenlet of that handle never runs again (dead, or dropped
//!   unstarted); its continuation goes back to the pool.
//!
//! What native code keeps in registers and on its machine stack, a wasm program keeps in two
//! places: the engine's call frames live on the continuation's stack (which wasmtime owns), and
//! whatever LLVM puts in linear memory (address-taken locals, large values) lives on the
//! *shadow stack*, addressed by the `__stack_pointer` global. The runtime gives each greenlet
//! its own shadow stack (allocated by `stack.rs` from the heap) and saves and restores
//! `__stack_pointer` on every switch; without that, two greenlets would overwrite each other's
//! locals.
//!
//! A "stack pointer" here (what `switch` saves and `init_stack` returns) is a runtime handle:
//! a small integer naming a continuation. Handle 0 is the root: the continuation in which the
//! host entered the program (the runtime's `run` export).
//!
//! The runtime keeps no greenlet rules: dead targets, parents and panics are handled by
//! `switch.rs`, exactly as on the native targets.

use std::cell::UnsafeCell;

use super::{EntryFn, Words};

#[link(wasm_import_module = "greenlet_rt")]
unsafe extern "C" {
    #[link_name = "new"]
    fn rt_new(entry: usize, data: usize, shadow_top: usize) -> usize;
    #[link_name = "release"]
    fn rt_release(handle: usize);
}

// "C-unwind": a switch in a dead greenlet never returns, but it may unwind: when its
// continuation is reused, the runtime throws through the dead greenlet's frames (see
// `asm/wasm/greenlet_rt.wat`), and with `panic=unwind` Rust must let that pass.
#[link(wasm_import_module = "greenlet_rt")]
unsafe extern "C-unwind" {
    #[link_name = "switch"]
    fn rt_switch(
        save: *mut *mut u8,
        target: usize,
        w0: usize,
        w1: usize,
        w2: usize,
        w3: usize,
        out: *mut Words,
    );
}

/// Bytes below a stack's top that belong to the platform layer rather than to the greenlet's
/// shadow stack: the word at `top - HEADER` holds the stack's continuation handle (0: none),
/// written by [`init_stack`] and read by [`release_stack`]. 16 keeps the shadow stack pointer
/// 16-byte aligned, as LLVM expects.
pub(crate) const HEADER: usize = 16;

/// Saves the running greenlet's handle in `*save_sp`, runs the continuation `target_sp`
/// handing it `words`, and returns the words handed over by whichever greenlet later switches
/// back to this one. `link` is unused: wasm has no frame records for an unwinder to follow.
///
/// # Safety
/// `save_sp` must be writable; `target_sp` must be a handle returned by [`init_stack`] and
/// not released, or one saved by this function, whose greenlet is not running.
#[inline(always)]
pub(crate) unsafe fn switch(
    save_sp: *mut *mut u8,
    target_sp: *mut u8,
    link: *mut usize,
    words: Words,
) -> Words {
    let _ = link;
    let out = RECEIVED.0.get();
    // SAFETY: the caller guarantees the handle is live and `save_sp` writable. The runtime
    // writes the four received words to `RECEIVED` right before this call returns, and they
    // are read at once, before anything can switch again.
    unsafe {
        rt_switch(
            save_sp,
            target_sp as usize,
            words[0],
            words[1],
            words[2],
            words[3],
            out,
        );
        out.read()
    }
}

/// Where the runtime leaves the words a resumed greenlet receives. One static buffer rather
/// than a local of each switch: a local whose address is taken lives on the shadow stack, and
/// would give every function that inlines the switch a shadow-stack frame to set up and tear
/// down on each switch.
struct Received(UnsafeCell<Words>);

// SAFETY: wasm32-unknown-unknown runs one thread (checked below); the buffer is written by the
// runtime and read right after, with no switch in between.
unsafe impl Sync for Received {}

static RECEIVED: Received = Received(UnsafeCell::new([0; 4]));

// With the atomics feature, wasm32 has threads: one static buffer would be shared by them.
#[cfg(target_feature = "atomics")]
compile_error!("the wasm32 platform layer assumes a single thread (no `atomics` feature)");

/// Gives the stack whose top is `top` a continuation that calls `entry(w0, w1, w2, w3, data)`
/// with the words of the first switch into it, with its shadow stack just below the header.
/// Returns the handle, to be passed to [`switch`].
///
/// # Safety
/// `top` must be 16-byte aligned, with [`HEADER`] writable bytes below it that nothing else
/// uses, on a stack that stays allocated while the continuation may run; the stack must not
/// hold a handle already (see [`release_stack`]).
pub(crate) unsafe fn init_stack(top: *mut u8, entry: EntryFn, data: usize) -> *mut u8 {
    debug_assert_eq!(top as usize % super::STACK_ALIGN, 0);
    let header = top.wrapping_sub(HEADER).cast::<usize>();
    // SAFETY: `entry` is a function of this module's table (a wasm function pointer is its
    // table index), and the shadow stack below the header is the caller's to give.
    let handle = unsafe { rt_new(entry as usize, data, header as usize) };
    // SAFETY: the caller guarantees the header's bytes are ours.
    unsafe { header.write(handle) };
    handle as *mut u8
}

/// Gives back the continuation of the stack whose top is `top`, if it got one from
/// [`init_stack`]: called when the stack is freed, which happens only once its greenlet is dead
/// or was never started, so the continuation never runs that greenlet again.
///
/// # Safety
/// `top` is the top of a stack whose header bytes are initialised (zero when no handle).
pub(crate) unsafe fn release_stack(top: *mut u8) {
    let header = top.wrapping_sub(HEADER).cast::<usize>();
    // SAFETY: the caller guarantees the header is initialised and ours.
    let handle = unsafe { header.replace(0) };
    if handle != 0 {
        // SAFETY: the handle came from `rt_new` and its greenlet never runs again.
        unsafe { rt_release(handle) };
    }
}

/// No link slot on wasm32 (no frame records); a switch gets a pointer it never writes to.
pub(crate) fn link_slot(top: *mut u8) -> *mut usize {
    top.cast()
}
