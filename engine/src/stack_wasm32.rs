//! Greenlet stacks on wasm32: shadow stacks allocated from the Rust heap.
//!
//! A wasm greenlet has two stacks. Its call frames live on the continuation the runtime gives
//! it (`arch::wasm32`), a stack that wasmtime maps and owns, and that wasmtime guards: running
//! off it traps. What LLVM keeps in linear memory (address-taken locals, large arrays) lives on
//! the *shadow stack* this module allocates, one per greenlet, from the ordinary heap.
//!
//! **No guard pages.** Linear memory has no page protection, so nothing stops a greenlet whose
//! shadow stack overflows from writing into the heap below it: rule 11 of `semantics.md`
//! (stack overflow ends the process with a message) holds only on the native targets. The
//! sizes are the builder's, checked and rounded as natively; a stack is zeroed when allocated.
//!
//! No per-thread pool either: freeing a stack gives its continuation back to the runtime's
//! pool (where the expensive part, the wasmtime stack, is kept) and its memory to the
//! allocator, which hands the same block out again at the next spawn of that size.

use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::ptr::NonNull;

use crate::arch;
use crate::error::Error;

/// Shadow-stack bytes of a greenlet when the builder does not ask for another. Smaller than the
/// native default (1 MiB): on wasm32 only spilled locals use it, not call frames, and it is
/// allocated up front from a linear memory of at most 4 GiB.
pub const DEFAULT_STACK_SIZE: usize = 64 << 10;
/// The smallest stack size accepted (as on the native targets).
pub const MIN_STACK_SIZE: usize = 16 << 10;
/// The largest stack size accepted (as on the native targets; linear memory may run out first).
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Alignment (and size granularity) of a shadow stack.
const ALIGN: usize = 16;

/// Rounds a requested size up to [`ALIGN`], or explains why it is refused.
#[inline]
pub(crate) fn usable_size(requested: usize) -> Result<usize, Error> {
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&requested) {
        return Err(Error::InvalidStackSize {
            requested,
            min: MIN_STACK_SIZE,
            max: MAX_STACK_SIZE,
        });
    }
    Ok((requested + ALIGN - 1) & !(ALIGN - 1))
}

/// One shadow stack: `[usable bytes ... top)[platform header]`.
#[derive(Debug)]
pub(crate) struct Stack {
    base: NonNull<u8>,
    /// Usable bytes (the header not included).
    size: usize,
}

impl Stack {
    fn layout(size: usize) -> Layout {
        // `size` was checked by `usable_size`: at most 1 GiB plus the header, 16-aligned.
        Layout::from_size_align(size + arch::HEADER, ALIGN).expect("checked stack size")
    }

    /// A zeroed stack with `size` usable bytes.
    pub(crate) fn fresh(size: usize) -> Result<Stack, Error> {
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc_zeroed(Stack::layout(size)) };
        match NonNull::new(base) {
            Some(base) => Ok(Stack { base, size }),
            None => Err(Error::StackAllocation { size, errno: 0 }),
        }
    }

    /// No pool here (see [`Stack::pool`]): every stack is allocated by [`Stack::fresh`].
    #[inline]
    pub(crate) fn pooled(_size: usize) -> Option<Stack> {
        None
    }

    /// Frees the stack (and gives its continuation back to the runtime, see `Drop`).
    #[inline]
    pub(crate) fn recycle(self) {
        drop(self);
    }

    /// There is no pool here: the stack comes back, and whoever receives the dying greenlet's
    /// last switch frees it (a context cannot free the stack it runs on).
    #[inline]
    pub(crate) fn pool(self) -> Result<(), Stack> {
        Err(self)
    }

    /// One past the highest usable byte; the platform header sits above it.
    #[inline]
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: base + size is inside (at the end of the usable part of) the allocation.
        unsafe { self.base.as_ptr().add(self.size) }
    }

    /// The usable range.
    pub(crate) fn usable(&self) -> std::ops::Range<usize> {
        self.base.as_ptr() as usize..self.top() as usize
    }

    /// Zeroes the usable bytes, so that [`high_water`](Stack::high_water) measures the next
    /// user only.
    pub(crate) fn discard(&self) {
        // SAFETY: the usable bytes are ours and no greenlet runs on this stack (it is being
        // handed to an unstarted greenlet).
        unsafe { self.base.as_ptr().write_bytes(0, self.size) };
    }

    /// How deep the stack has been used, in bytes from the top: the first non-zero byte from
    /// the bottom. Exact for stacks that started zeroed (they all do here).
    pub(crate) fn high_water(&self) -> usize {
        // SAFETY: the usable bytes are initialised (zeroed at allocation) and ours.
        let bytes = unsafe { std::slice::from_raw_parts(self.base.as_ptr(), self.size) };
        bytes
            .iter()
            .position(|&b| b != 0)
            .map_or(0, |first| self.size - first)
    }

    /// Usable bytes.
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// No guard page on wasm32: an empty range at the bottom of the stack.
    pub(crate) fn guard(&self) -> std::ops::Range<usize> {
        let base = self.base.as_ptr() as usize;
        base..base
    }
}

impl Drop for Stack {
    /// Gives the continuation back to the runtime and frees the memory. The greenlet that used
    /// the stack is dead or was never started, so neither is used again.
    fn drop(&mut self) {
        // SAFETY: the header is part of the allocation, zeroed at allocation and written only
        // by `init_stack`.
        unsafe { arch::release_stack(self.top()) };
        // SAFETY: allocated in `get` with this layout.
        unsafe { dealloc(self.base.as_ptr(), Stack::layout(self.size)) };
    }
}

/// Guard pages are not a thing on wasm32: always `None` (no stack is ever guarded).
pub fn guard_uses_madvise() -> Option<bool> {
    None
}
