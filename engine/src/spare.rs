//! Memory for greenlet control blocks ([`Inner`]): a per-thread cache of freed blocks in front
//! of the global allocator.
//!
//! A program that spawns short-lived greenlets frees one block per death and allocates one per
//! spawn. Keeping the last few freed blocks on the thread makes that pair two array operations
//! instead of a `malloc` and a `free` (about 130 of the ~670 instructions of a pooled
//! spawn-run-finish-drop, measured with callgrind), the way `stack`'s hot pool does for stacks.
//! Blocks are plain memory here: an `Inner` is dropped in place before its block comes back.

use std::alloc::{self, Layout};
use std::cell::{Cell, UnsafeCell};
use std::ptr;

use crate::inner::Inner;

/// Blocks kept per thread; beyond this a freed block goes back to the allocator.
const CAPACITY: usize = 64;

struct Spare {
    /// Blocks in `blocks[..len]`.
    len: Cell<usize>,
    /// How many blocks may be cached: `CAPACITY`, or 0 once the thread is exiting (one compare
    /// on the fast path covers both).
    limit: Cell<usize>,
    blocks: UnsafeCell<[*mut Inner; CAPACITY]>,
}

thread_local! {
    /// Const-initialised and without a destructor, so reaching it is a plain thread-pointer
    /// access (no "registered yet?" test); the thread's exit empties it through [`close`].
    static SPARE: Spare = const {
        Spare {
            len: Cell::new(0),
            limit: Cell::new(CAPACITY),
            blocks: UnsafeCell::new([ptr::null_mut(); CAPACITY]),
        }
    };
}

/// Gives every cached block back to the allocator and caches nothing from now on: called once
/// the thread's greenlet state is being torn down (`thread::Cold`'s destructor), after which
/// blocks go straight to the allocator.
pub(crate) fn close() {
    let _ = SPARE.try_with(|s| {
        s.limit.set(0);
        let n = s.len.replace(0);
        for i in 0..n {
            // SAFETY: entries below the old `len` are cached blocks from `fresh` (the global
            // allocator, `Layout::new::<Inner>()`), holding no live `Inner`; each is freed once.
            unsafe { alloc::dealloc((*s.blocks.get())[i].cast(), Layout::new::<Inner>()) };
        }
    });
}

/// A block for an `Inner` (a cached one if the thread has one), uninitialised; it stays put
/// until [`release`].
#[inline(always)]
pub(crate) fn block() -> *mut Inner {
    cached().unwrap_or_else(fresh)
}

/// The most recently cached block, if any.
#[inline(always)]
fn cached() -> Option<*mut Inner> {
    SPARE
        .try_with(|s| {
            let n = s.len.get();
            if n == 0 {
                return None;
            }
            s.len.set(n - 1);
            // SAFETY: `n - 1 < CAPACITY` is an initialised entry (below `len`), no longer
            // covered by `len`; nothing else refers to the array while this runs.
            Some(unsafe { (*s.blocks.get())[n - 1] })
        })
        .ok()
        .flatten()
}

#[cold]
fn fresh() -> *mut Inner {
    let layout = Layout::new::<Inner>();
    // SAFETY: `Inner` is not zero-sized.
    let p = unsafe { alloc::alloc(layout) }.cast::<Inner>();
    if p.is_null() {
        alloc::handle_alloc_error(layout);
    }
    p
}

/// Drops the `Inner` at `p` in place and gives its block back (to the thread's cache if it
/// has room, else to the allocator).
///
/// # Safety
/// `p` came from [`allocate`] and is released once; nothing refers to it any more.
pub(crate) unsafe fn release(p: *const Inner) {
    let p = p as *mut Inner;
    // SAFETY: forwarded from the caller. Dropping runs user code (the body's captures), which
    // may allocate and release blocks itself: the cache is only touched after it.
    unsafe { ptr::drop_in_place(p) };
    let cached = SPARE
        .try_with(|s| {
            let n = s.len.get();
            if n >= s.limit.get() {
                return false;
            }
            // SAFETY: `n < limit <= CAPACITY`; the entry is past `len`, so free.
            unsafe { (*s.blocks.get())[n] = p };
            s.len.set(n + 1);
            true
        })
        .unwrap_or(false);
    if !cached {
        // SAFETY: the block came from `fresh` with this layout (see `allocate`).
        unsafe { alloc::dealloc(p.cast(), Layout::new::<Inner>()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inner::State;

    fn allocate() -> *const Inner {
        Inner::allocate(State::Unstarted, ptr::null(), None, 0)
    }

    #[test]
    fn a_released_block_is_reused_by_the_next_allocation() {
        let a = allocate();
        // SAFETY: made just above, released once.
        unsafe { release(a) };
        let b = allocate();
        assert_eq!(a, b, "the cached block comes back");
        // SAFETY: as above.
        unsafe { release(b) };
    }

    #[test]
    fn a_closed_cache_frees_its_blocks_and_caches_no_more() {
        std::thread::spawn(|| {
            let blocks: Vec<_> = (0..3).map(|_| allocate()).collect();
            for &p in &blocks {
                // SAFETY: each was allocated above and is released once.
                unsafe { release(p) };
            }
            assert_eq!(SPARE.with(|s| s.len.get()), 3);
            close();
            assert_eq!(
                SPARE.with(|s| s.len.get()),
                0,
                "the cached blocks were freed"
            );
            let late = allocate();
            // SAFETY: as above.
            unsafe { release(late) };
            assert_eq!(
                SPARE.with(|s| s.len.get()),
                0,
                "a block freed after closing is not kept"
            );
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_cache_holds_at_most_capacity_blocks_and_frees_the_rest() {
        let blocks: Vec<_> = (0..CAPACITY + 10).map(|_| allocate()).collect();
        for &p in &blocks {
            // SAFETY: each was allocated above and is released once.
            unsafe { release(p) };
        }
        assert_eq!(SPARE.with(|s| s.len.get()), CAPACITY);
        // Reused in last-freed-first order, from the cached ones only.
        let again: Vec<_> = (0..CAPACITY).map(|_| allocate()).collect();
        assert!(again.iter().all(|p| blocks.contains(p)));
        assert_eq!(SPARE.with(|s| s.len.get()), 0);
        for p in again {
            // SAFETY: as above.
            unsafe { release(p) };
        }
    }
}
