//! Greenlet stacks: carved from large lazily-committed mappings, each with a guard page below,
//! recycled per thread.
//!
//! # Chunks
//! Stacks are not mapped one by one: a *chunk* is one private anonymous mapping, made with
//! `MAP_NORESERVE` (only touched pages cost memory) and `MADV_NOHUGEPAGE` (a stack touches a
//! page or two; a transparent huge page would commit 2 MiB for it), cut into equal slots
//! `[guard page][usable bytes]` of one stack size. A chunk holds up to [`MAX_SLOTS`] slots and
//! spans at most about [`CHUNK_SPAN`] bytes (so a 16 KiB stack comes from a 20 MiB chunk of
//! 1024 slots, a 1 MiB stack from a 128 MiB chunk of 127, a 1 GiB stack from its own mapping).
//! Slots are carved lazily, lowest address first: carving installs the slot's guard.
//!
//! # Guard pages
//! Touching a guard raises `SIGSEGV`, which [`crate::overflow`] turns into a message naming
//! the greenlet. On Linux 6.13 and later the guard is installed with
//! `madvise(MADV_GUARD_INSTALL)`, which keeps the chunk one memory mapping (one VMA) whatever
//! its number of stacks: a million guarded stacks stay far below `vm.max_map_count` (65530 by
//! default). Older kernels refuse that advice with `EINVAL`, and the guard falls back to
//! `mprotect(PROT_NONE)`, which splits the chunk: two VMAs per carved stack, so that a process
//! stops at about 32,700 live stacks on default sysctls (mapping then fails with `ENOMEM`,
//! reported as [`Error::StackAllocation`]). qemu-user accepts the advice but installs nothing,
//! so the first guard is checked with a probe (see [`install_guard`]).
//! `GREENLET_GUARD=mprotect` in the environment forces the fallback (for tests and comparisons).
//!
//! # Reuse
//! A freed stack first goes to a small per-thread *hot* pool ([`HOT_CAPACITY`] stacks) that
//! keeps its pages: spawning from it makes no system call and takes no page fault. The hot
//! pool is a const-initialised thread-local without a destructor, so reaching it is a plain
//! thread-pointer-relative access with no "initialised yet?" check.
//!
//! A stack freed when the hot pool is full goes back to its chunk, and its slot waits, guard
//! still installed, for the next stack of that size. Its pages stay resident ("dirty") while
//! the thread's dirty slots add up to at most [`DIRTY_BUDGET`] bytes of stack: freeing costs no
//! system call and reuse no page fault. Past the budget, the chunk's dirty slots are given
//! back to the kernel with `MADV_DONTNEED`, one call per run of adjacent slots (a chain of
//! greenlets frees its stacks in a row); `MADV_DONTNEED` leaves guard pages in place. When
//! every stack of a chunk is free, the chunk is unmapped, except one such empty chunk per stack
//! size, kept so that a workload oscillating around a chunk boundary does not map and unmap a
//! chunk (and install its guards again) each time.
//!
//! `MADV_FREE` was measured against `MADV_DONTNEED` (16 KiB slots, two pages touched per use,
//! this project's VM): the call costs the same (about 0.85 µs), reuse is cheaper (0.45 µs
//! against 1.9 µs for the two page faults), but freed pages stay in the process's RSS until
//! the kernel is short of memory (1024 freed slots: 9.6 MiB against 1.5 MiB), which defeats
//! giving them back; reuse without faults is what the budget is for.
//!
//! The chunk bookkeeping lives in a second thread-local, with a destructor, touched only off
//! the hot path. At thread exit it unmaps the chunks with no stack in use; a chunk with stacks
//! still in use (a greenlet leaked, or freed by a later thread-local destructor) is unmapped by
//! its last stack.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::mem::MaybeUninit;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::error::Error;

/// Usable size of a stack when the builder does not ask for another: 1 MiB of address space,
/// of which only the touched pages are committed.
pub const DEFAULT_STACK_SIZE: usize = 1 << 20;
/// The smallest usable stack size accepted. Unwinding a killed greenlet needs a few KiB of
/// stack for the unwinder itself; 16 KiB leaves room for that and a modest body.
pub const MIN_STACK_SIZE: usize = 16 << 10;
/// The largest usable stack size accepted (1 GiB).
pub const MAX_STACK_SIZE: usize = 1 << 30;

/// Freed stacks kept per thread with their pages, ready to hand out without a system call.
/// Bounds the memory a thread keeps for later (64 × whatever depth its greenlets reached).
const HOT_CAPACITY: usize = 64;
/// Most slots in one chunk: 1024 stacks of 16 KiB are a 20 MiB mapping, and a million of them
/// about a thousand mappings (which the kernel often merges, as they are alike and adjacent).
const MAX_SLOTS: usize = 1024;
/// Address space a chunk spans at most (unless one stack is larger). `MAP_NORESERVE` makes
/// address space cheap; this keeps a thread that spawns one default greenlet at 128 MiB of it.
const CHUNK_SPAN: usize = 128 << 20;
/// Usable bytes of freed stacks, per thread, that go back to their chunks with their pages
/// still resident (beyond the hot pool): reusing one takes no page fault, and freeing one no
/// system call. Past it, a chunk's dirty slots are discarded with one `madvise` per run of
/// adjacent slots. Counted by stack size, so it bounds the worst case (every page touched).
const DIRTY_BUDGET: usize = 16 << 20;
/// Marks a dirty slot in a chunk's free list.
const DIRTY: u32 = 1 << 31;
/// Chunks kept per stack size when all their stacks are free.
const EMPTY_CHUNKS_KEPT: usize = 1;

/// The system page size (a power of two), read once.
#[inline]
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    #[cold]
    fn read() -> usize {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let p = if p > 0 && (p as usize).is_power_of_two() {
            p as usize
        } else {
            4096
        };
        PAGE.store(p, Ordering::Relaxed);
        p
    }
    match PAGE.load(Ordering::Relaxed) {
        0 => read(),
        p => p,
    }
}

/// Rounds a requested usable size up to whole pages, or explains why it is refused.
/// Called on every spawn: a mask, not a division (the page size is a power of two).
#[inline]
pub(crate) fn usable_size(requested: usize) -> Result<usize, Error> {
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&requested) {
        return Err(Error::InvalidStackSize {
            requested,
            min: MIN_STACK_SIZE,
            max: MAX_STACK_SIZE,
        });
    }
    let mask = page_size() - 1;
    Ok((requested + mask) & !mask)
}

/// One stack: a slot `[guard page][usable bytes ... top)` of a chunk.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Start of the slot, which is the start of the guard page.
    base: *mut u8,
    /// Usable bytes above the guard.
    size: usize,
    /// The chunk the slot belongs to; it stays mapped at least as long as this stack.
    chunk: NonNull<Chunk>,
}

impl Stack {
    /// A stack with `size` usable bytes (already page-rounded), from this thread's hot pool
    /// when one of that size is there. (Greenlets go through [`Stack::pooled`] and
    /// [`Stack::fresh`] separately, see `Inner::prepare`.)
    #[cfg(test)]
    pub(crate) fn get(size: usize) -> Result<Stack, Error> {
        match Stack::pooled(size) {
            Some(s) => Ok(s),
            None => Stack::fresh(size),
        }
    }

    /// A stack with `size` usable bytes from this thread's hot pool, if it has one.
    #[inline(always)]
    pub(crate) fn pooled(size: usize) -> Option<Stack> {
        hot().take(size)
    }

    /// Gives the stack back to this thread's hot pool, or to its chunk when the pool is full.
    #[inline(always)]
    pub(crate) fn recycle(self) {
        if let Err(stack) = hot().put(self) {
            // Dropping returns the slot to its chunk (see `Drop`).
            drop(stack);
        }
    }

    /// Puts the stack in this thread's hot pool, or hands it back when the pool is full.
    /// Unlike [`Stack::recycle`], never touches the stack's pages or its chunk, so a context
    /// may still be running on it (see `switch::give_back_own_stack`).
    #[inline(always)]
    pub(crate) fn pool(self) -> Result<(), Stack> {
        hot().put(self)
    }

    /// A stack not from the hot pool: a free slot of a chunk, else a newly carved one (in a
    /// new chunk if need be).
    #[cold]
    #[inline(never)]
    pub(crate) fn fresh(size: usize) -> Result<Stack, Error> {
        let closed = HOT.with(|h| h.closed.get());
        let taken = if closed {
            None
        } else {
            REGISTRY.try_with(|r| r.borrow_mut().take(size)).ok()
        };
        let (base, chunk) = match taken {
            Some(slot) => slot?,
            // The thread is exiting and its chunk registry is gone: a chunk of one slot,
            // unmapped when this stack is dropped.
            None => {
                let chunk = Chunk::map(size, 1)?;
                // SAFETY: the chunk was just made and is owned here.
                match unsafe { chunk.as_ref() }.take_slot() {
                    Ok(Some((base, _))) => (base, chunk),
                    other => {
                        // SAFETY: no slot of the chunk is in use.
                        unsafe { Chunk::unmap(chunk) };
                        return Err(other.err().unwrap_or(Error::StackAllocation {
                            size,
                            errno: libc::ENOMEM,
                        }));
                    }
                }
            }
        };
        crate::overflow::install();
        crate::valgrind::register_stack(base, size);
        Ok(Stack { base, size, chunk })
    }

    /// One past the highest usable byte; where a new context's frame goes.
    #[inline]
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: base + guard + size is the end of the slot, inside the chunk's mapping.
        unsafe { self.base.add(page_size() + self.size) }
    }

    /// The usable range (the guard page not included).
    pub(crate) fn usable(&self) -> std::ops::Range<usize> {
        self.guard().end..self.top() as usize
    }

    /// Gives the usable pages back to the kernel: they read as zero again, so
    /// [`high_water`](Stack::high_water) measures this stack's next user only.
    pub(crate) fn discard(&self) {
        // SAFETY: the range is whole pages of our slot, and no context runs on this stack (it
        // is being handed to an unstarted greenlet).
        unsafe { discard_pages(self.usable()) };
    }

    /// How deep the stack has been used, in bytes from the top: the lowest resident page's
    /// first non-zero byte. Exact for stacks that started zeroed (fresh or
    /// [`discard`](Stack::discard)ed).
    pub(crate) fn high_water(&self) -> usize {
        let r = self.usable();
        let page = page_size();
        let pages = (r.end - r.start) / page;
        let mut resident = vec![0u8; pages];
        // SAFETY: the range is page-aligned and mapped; the vector has one byte per page.
        let ok = unsafe {
            libc::mincore(
                r.start as *mut libc::c_void,
                r.end - r.start,
                // `unsigned char *` on Linux, `char *` on macOS.
                resident.as_mut_ptr().cast(),
            )
        } == 0;
        if !ok {
            return 0;
        }
        let Some(lowest) = resident.iter().position(|b| b & 1 != 0) else {
            return 0;
        };
        let start = r.start + lowest * page;
        // SAFETY: the page is resident and part of our slot.
        let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, page) };
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(page);
        r.end - (start + first)
    }

    /// Usable bytes (the guard page not included).
    #[inline]
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range.
    pub(crate) fn guard(&self) -> std::ops::Range<usize> {
        self.base as usize..self.base as usize + page_size()
    }
}

impl Drop for Stack {
    /// Returns the slot to its chunk; no context runs on the stack any more (the greenlet that
    /// used it is dead or was never started).
    fn drop(&mut self) {
        crate::valgrind::deregister_stack(self.base);
        release(self.base, self.chunk);
    }
}

/// Returns the slot at `base` to `chunk`, through this thread's registry while it exists.
#[inline(never)]
fn release(base: *mut u8, chunk: NonNull<Chunk>) {
    if !HOT.with(|h| h.closed.get())
        && REGISTRY
            .try_with(|r| r.borrow_mut().give_back(base, chunk))
            .is_ok()
    {
        return;
    }
    // The registry is gone (thread exit): nobody will hand this slot out again, so the chunk
    // only counts down and goes with its last stack.
    // SAFETY: `chunk` outlives its stacks and only this thread touches it.
    let c = unsafe { chunk.as_ref() };
    c.live.set(c.live.get() - 1);
    if c.live.get() == 0 {
        // SAFETY: no stack of the chunk is left, and no registry list refers to it (the
        // registry unlisted every chunk when it closed).
        unsafe { Chunk::unmap(chunk) };
    }
}

/// Gives the pages of `range` back to the kernel (they read as zero next time).
///
/// # Safety
/// `range` must be whole pages of a stack slot on which no context runs.
unsafe fn discard_pages(range: std::ops::Range<usize>) {
    // SAFETY: forwarded from the caller. The guard below is kept: MADV_DONTNEED leaves guard
    // regions (and mprotect'ed pages) in place.
    unsafe {
        libc::madvise(
            range.start as *mut libc::c_void,
            range.end - range.start,
            libc::MADV_DONTNEED,
        )
    };
}

/// This thread's hot pool. Taken as a reference rather than through a `with` closure, so that
/// the fast paths inline to a few thread-pointer-relative instructions.
#[inline(always)]
fn hot() -> &'static Hot {
    // SAFETY: `HOT` has no destructor, so its storage stays valid for the whole life of this
    // thread, and the reference never leaves the thread (`Hot` is not `Sync`).
    HOT.with(|h| unsafe { &*std::ptr::from_ref(h) })
}

/// The per-thread pool of freed stacks that keep their pages.
struct Hot {
    /// Stacks in `stacks[..len]`.
    len: Cell<usize>,
    /// How many stacks `put` may pool: `HOT_CAPACITY`, or 0 once closed (one compare on the
    /// fast path covers both).
    limit: Cell<usize>,
    /// The thread's registry is gone (thread exit): stacks go straight back to their chunks.
    closed: Cell<bool>,
    stacks: UnsafeCell<[MaybeUninit<Stack>; HOT_CAPACITY]>,
}

impl Hot {
    fn slots(&self) -> *mut MaybeUninit<Stack> {
        self.stacks.get().cast()
    }

    /// Takes a pooled stack of `size` usable bytes, the most recently freed first. The fast
    /// path looks at the last one only: a thread's greenlets mostly share one stack size.
    #[inline(always)]
    fn take(&self, size: usize) -> Option<Stack> {
        let n = self.len.get();
        if n == 0 {
            return None;
        }
        // SAFETY: entries below `len` are initialised, and nothing else refers to the array
        // while this runs (get and recycle never call out, so they cannot re-enter).
        let last = unsafe { self.slots().add(n - 1) };
        // SAFETY: as above.
        if unsafe { (*last).assume_init_ref().size } != size {
            return self.take_other(size);
        }
        self.len.set(n - 1);
        // SAFETY: as above; the entry leaves the pool (`len` no longer covers it).
        Some(unsafe { last.read().assume_init() })
    }

    /// `take` when the last pooled stack has another size.
    #[cold]
    #[inline(never)]
    fn take_other(&self, size: usize) -> Option<Stack> {
        let n = self.len.get();
        let stacks = self.slots();
        // SAFETY: entries below `len` are initialised (see `take`).
        let i = (0..n)
            .rev()
            .find(|&i| unsafe { (*stacks.add(i)).assume_init_ref().size } == size)?;
        // SAFETY: entry `i` is moved out, then the last entry is moved into its place, so
        // `stacks[..n - 1]` is initialised again.
        unsafe {
            let s = stacks.add(i).read().assume_init();
            stacks.add(i).write(stacks.add(n - 1).read());
            self.len.set(n - 1);
            Some(s)
        }
    }

    /// Pools `stack`, or hands it back when the pool is full or closed.
    #[inline(always)]
    fn put(&self, stack: Stack) -> Result<(), Stack> {
        let n = self.len.get();
        if n >= self.limit.get() {
            return Err(stack);
        }
        // SAFETY: `n < limit <= HOT_CAPACITY`, so entry `n` is in the array and free; nothing
        // else refers to the array (see `take`).
        unsafe { self.slots().add(n).write(MaybeUninit::new(stack)) };
        self.len.set(n + 1);
        Ok(())
    }

    /// Closes the pool for good and returns the stacks it held.
    fn close(&self) -> Vec<Stack> {
        self.closed.set(true);
        self.limit.set(0);
        let n = self.len.replace(0);
        let stacks = self.slots();
        // SAFETY: entries below the old `len` are initialised, and each is moved out once.
        (0..n)
            .map(|i| unsafe { stacks.add(i).read().assume_init() })
            .collect()
    }
}

thread_local! {
    /// Hot path: const-initialised and without a destructor, so no lazy-init check.
    static HOT: Hot = const {
        Hot {
            len: Cell::new(0),
            limit: Cell::new(HOT_CAPACITY),
            closed: Cell::new(false),
            stacks: UnsafeCell::new([const { MaybeUninit::uninit() }; HOT_CAPACITY]),
        }
    };
    /// Cold path: the chunks with a free slot, by stack size.
    static REGISTRY: RefCell<Registry> = const { RefCell::new(Registry { classes: Vec::new(), dirty: 0 }) };
}

/// One mapping cut into `slots` stack slots of one size; lives on the heap, owned by its
/// thread's registry (or, once the registry is gone, by its last stack).
#[derive(Debug)]
struct Chunk {
    base: *mut u8,
    /// Usable bytes of each stack.
    size: usize,
    /// Bytes per slot: a guard page and the usable bytes.
    slot: usize,
    slots: usize,
    /// Slots carved so far (guard installed); the ones above are untouched address space.
    carved: Cell<usize>,
    /// Carved slots given back, by index; [`DIRTY`] marks one whose pages are still there.
    free: RefCell<Vec<u32>>,
    /// Entries of `free` marked [`DIRTY`].
    dirty: Cell<usize>,
    /// Stacks of this chunk that exist (in use or in the hot pool).
    live: Cell<usize>,
    /// Whether the chunk is on its size class's `room` list.
    listed: Cell<bool>,
}

impl Chunk {
    /// How many slots a chunk for stacks of `size` usable bytes gets.
    fn slots_for(size: usize) -> usize {
        (CHUNK_SPAN / (size + page_size())).clamp(1, MAX_SLOTS)
    }

    /// Maps a chunk of `slots` slots for stacks of `size` usable bytes.
    fn map(size: usize, slots: usize) -> Result<NonNull<Chunk>, Error> {
        let slot = size + page_size();
        let len = slot * slots;
        // SAFETY: an anonymous private mapping at a kernel-chosen address has no preconditions.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(Error::StackAllocation {
                size,
                errno: last_errno(),
            });
        }
        // Failure is harmless (a kernel without transparent huge pages refuses the advice).
        // SAFETY: the range is the mapping just made.
        #[cfg(target_os = "linux")]
        unsafe {
            libc::madvise(base, len, libc::MADV_NOHUGEPAGE)
        };
        #[cfg(test)]
        tests::count_chunk(size, 1);
        Ok(NonNull::from(Box::leak(Box::new(Chunk {
            base: base.cast(),
            size,
            slot,
            slots,
            carved: Cell::new(0),
            free: RefCell::new(Vec::new()),
            dirty: Cell::new(0),
            live: Cell::new(0),
            listed: Cell::new(false),
        }))))
    }

    /// Unmaps the chunk and frees its bookkeeping.
    ///
    /// # Safety
    /// No stack of the chunk may exist, and no list may still refer to it.
    unsafe fn unmap(this: NonNull<Chunk>) {
        // SAFETY: the chunk was made by `Box::leak` in `map`, and the caller guarantees that
        // nothing refers to it any more.
        let c = unsafe { Box::from_raw(this.as_ptr()) };
        #[cfg(test)]
        tests::count_chunk(c.size, -1);
        // SAFETY: the mapping is ours and nothing runs on it (no stack of it exists).
        unsafe { libc::munmap(c.base.cast(), c.slot * c.slots) };
    }

    fn slot_base(&self, i: usize) -> *mut u8 {
        // SAFETY: `i` is below `slots`, so the slot lies inside the mapping.
        unsafe { self.base.add(i * self.slot) }
    }

    /// A slot for a new stack: a given-back one, else the next uncarved one (its guard
    /// installed now), and whether it was dirty; `None` when the chunk is full.
    fn take_slot(&self) -> Result<Option<(*mut u8, bool)>, Error> {
        let mut dirty = false;
        let base = if let Some(e) = self.free.borrow_mut().pop() {
            if e & DIRTY != 0 {
                dirty = true;
                self.dirty.set(self.dirty.get() - 1);
            }
            self.slot_base((e & !DIRTY) as usize)
        } else {
            let i = self.carved.get();
            if i == self.slots {
                return Ok(None);
            }
            let base = self.slot_base(i);
            // SAFETY: the slot's first page is part of our mapping and unused (never carved).
            if let Err(errno) = unsafe { install_guard(base, page_size()) } {
                return Err(Error::StackAllocation {
                    size: self.size,
                    errno,
                });
            }
            self.carved.set(i + 1);
            base
        };
        self.live.set(self.live.get() + 1);
        Ok(Some((base, dirty)))
    }

    /// Discards the pages of every dirty free slot with one `madvise` per run of adjacent
    /// slots (the guard pages inside a run stay guards: `MADV_DONTNEED` removes neither guard
    /// regions nor protections). Returns how many slots were dirty.
    fn discard_dirty(&self) -> usize {
        let mut free = self.free.borrow_mut();
        let mut dirty: Vec<usize> = free
            .iter()
            .filter(|&&e| e & DIRTY != 0)
            .map(|&e| (e & !DIRTY) as usize)
            .collect();
        dirty.sort_unstable();
        let page = page_size();
        let mut rest = dirty.as_slice();
        while let Some(&first) = rest.first() {
            let run = rest
                .windows(2)
                .position(|w| w[1] != w[0] + 1)
                .map_or(rest.len(), |at| at + 1);
            let last = rest[run - 1];
            let range =
                self.slot_base(first) as usize + page..self.slot_base(last) as usize + self.slot;
            // SAFETY: whole pages of free slots of this chunk: no stack uses them.
            unsafe { discard_pages(range) };
            rest = &rest[run..];
        }
        for e in free.iter_mut() {
            *e &= !DIRTY;
        }
        self.dirty.replace(0)
    }

    fn has_room(&self) -> bool {
        self.carved.get() < self.slots || !self.free.borrow().is_empty()
    }
}

/// A thread's chunks that have room, by stack size.
struct Registry {
    classes: Vec<Class>,
    /// Usable bytes of this thread's dirty free slots (see [`DIRTY_BUDGET`]).
    dirty: usize,
}

/// The chunks of one stack size that have a free or uncarved slot.
struct Class {
    size: usize,
    /// Chunks with room, the one to carve from last; full chunks are dropped from it lazily.
    room: Vec<NonNull<Chunk>>,
    /// Chunks on `room` with no stack in use.
    empty: usize,
}

impl Registry {
    fn class_index(&mut self, size: usize) -> usize {
        match self.classes.iter().position(|c| c.size == size) {
            Some(at) => at,
            None => {
                self.classes.push(Class {
                    size,
                    room: Vec::new(),
                    empty: 0,
                });
                self.classes.len() - 1
            }
        }
    }

    /// A slot for a stack of `size` usable bytes, and its chunk.
    fn take(&mut self, size: usize) -> Result<(*mut u8, NonNull<Chunk>), Error> {
        let at = self.class_index(size);
        let class = &mut self.classes[at];
        while let Some(&chunk) = class.room.last() {
            // SAFETY: chunks on a room list are alive (unmapping removes them first).
            let c = unsafe { chunk.as_ref() };
            let was_empty = c.live.get() == 0;
            if let Some((base, dirty)) = c.take_slot()? {
                if was_empty {
                    class.empty -= 1;
                }
                if dirty {
                    self.dirty -= c.size;
                }
                return Ok((base, chunk));
            }
            class.room.pop();
            c.listed.set(false);
        }
        let chunk = Chunk::map(size, Chunk::slots_for(size))?;
        // SAFETY: the chunk was just made and is owned here.
        let c = unsafe { chunk.as_ref() };
        match c.take_slot() {
            Ok(Some((base, _))) => {
                c.listed.set(true);
                class.room.push(chunk);
                Ok((base, chunk))
            }
            other => {
                // SAFETY: no slot of the new chunk is in use and no list refers to it.
                unsafe { Chunk::unmap(chunk) };
                Err(other.err().unwrap_or(Error::StackAllocation {
                    size,
                    errno: libc::ENOMEM,
                }))
            }
        }
    }

    /// Takes back the slot at `base` of `chunk`.
    fn give_back(&mut self, base: *mut u8, chunk: NonNull<Chunk>) {
        // SAFETY: `chunk` outlives its stacks, and one is being given back.
        let c = unsafe { chunk.as_ref() };
        c.live.set(c.live.get() - 1);
        let at = self.class_index(c.size);
        let class = &mut self.classes[at];
        let empty = c.live.get() == 0;
        if empty && class.empty >= EMPTY_CHUNKS_KEPT {
            if c.listed.get()
                && let Some(at) = class.room.iter().rposition(|&x| x == chunk)
            {
                class.room.swap_remove(at);
            }
            self.dirty -= c.dirty.get() * c.size;
            // SAFETY: the chunk's last stack is being given back and no list refers to it.
            unsafe { Chunk::unmap(chunk) };
            return;
        }
        let index = ((base as usize - c.base as usize) / c.slot) as u32;
        // Kept dirty: reusing it takes no page fault, and freeing it no system call, up to the
        // thread's budget. An emptied chunk that is kept is no exception: discarding it at
        // once would make a workload whose last stack of a size keeps dying and respawning
        // pay an madvise and a page fault each time.
        c.free.borrow_mut().push(index | DIRTY);
        c.dirty.set(c.dirty.get() + 1);
        self.dirty += c.size;
        if self.dirty > DIRTY_BUDGET {
            self.dirty -= c.discard_dirty() * c.size;
        }
        if empty {
            class.empty += 1;
        }
        if !c.listed.get() {
            c.listed.set(true);
            class.room.push(chunk);
        }
        debug_assert!(c.has_room());
    }
}

impl Drop for Registry {
    /// Thread exit: unmaps the chunks with no stack left; the others go with their last stack.
    fn drop(&mut self) {
        let pooled = HOT.with(Hot::close);
        for class in &mut self.classes {
            for chunk in class.room.drain(..) {
                // SAFETY: chunks on a room list are alive.
                let c = unsafe { chunk.as_ref() };
                c.listed.set(false);
                if c.live.get() == 0 {
                    // SAFETY: no stack of it exists, and it has just left the only list.
                    unsafe { Chunk::unmap(chunk) };
                }
            }
        }
        // Now closed: each of these counts its chunk down, and the last one unmaps it.
        drop(pooled);
    }
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `MADV_GUARD_INSTALL` (Linux 6.13+); not yet in every libc crate release.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// Which guard mechanism this kernel accepts: 0 unknown, 1 madvise, 2 mprotect.
static GUARD_KIND: AtomicU8 = AtomicU8::new(0);

/// Makes `[base, base + len)` a guard region.
///
/// # Safety
/// The range must be whole pages of a mapping owned by the caller and not in use.
unsafe fn install_guard(base: *mut u8, len: usize) -> Result<(), i32> {
    let mut kind = GUARD_KIND.load(Ordering::Relaxed);
    if kind == 0 && std::env::var_os("GREENLET_GUARD").is_some_and(|v| v == "mprotect") {
        kind = 2;
        GUARD_KIND.store(2, Ordering::Relaxed);
    }
    if kind != 2 {
        // SAFETY: forwarded from the caller.
        if unsafe { libc::madvise(base.cast(), len, MADV_GUARD_INSTALL) } == 0 {
            // The first success is checked: qemu-user (7.2 at least) accepts any advice and
            // installs nothing, which would leave every stack unguarded.
            // SAFETY: `base` was just made a guard region (or was meant to be).
            if kind == 1 || unsafe { guard_refuses_access(base) } {
                GUARD_KIND.store(1, Ordering::Relaxed);
                return Ok(());
            }
        } else {
            let errno = last_errno();
            if errno != libc::EINVAL {
                return Err(errno);
            }
        }
        GUARD_KIND.store(2, Ordering::Relaxed);
    }
    // SAFETY: forwarded from the caller.
    if unsafe { libc::mprotect(base.cast(), len, libc::PROT_NONE) } == 0 {
        Ok(())
    } else {
        Err(last_errno())
    }
}

/// Whether the kernel refuses to read `page`: `access(2)` reads its path argument from inside
/// the kernel, which fails with `EFAULT` on a guard region instead of raising a signal. An
/// unguarded page reads as an empty path instead (`ENOENT`).
///
/// # Safety
/// `page` must be the start of a page of a mapping owned by the caller.
unsafe fn guard_refuses_access(page: *mut u8) -> bool {
    // SAFETY: `access` only reads the path; an unreadable page makes it fail, not fault.
    let r = unsafe { libc::access(page.cast_const().cast(), libc::F_OK) };
    r == -1 && last_errno() == libc::EFAULT
}

/// Whether guard pages are installed with `MADV_GUARD_INSTALL` (`Some(true)`), with `mprotect`
/// (`Some(false)`), or no stack has been mapped yet (`None`).
///
/// With `MADV_GUARD_INSTALL` a thread's stacks take about one memory mapping per thousand
/// small stacks; with `mprotect` each live stack takes two, and the default
/// `vm.max_map_count` (65530) stops a process at about 32,700 of them.
pub fn guard_uses_madvise() -> Option<bool> {
    match GUARD_KIND.load(Ordering::Relaxed) {
        1 => Some(true),
        2 => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Mapped chunks by stack size, process-wide; each test that reads it uses a stack size
    /// of its own, so tests running in parallel do not disturb each other's counts.
    static CHUNKS: Mutex<Vec<(usize, isize)>> = Mutex::new(Vec::new());

    pub(super) fn count_chunk(size: usize, delta: isize) {
        let mut chunks = CHUNKS.lock().unwrap_or_else(|e| e.into_inner());
        match chunks.iter_mut().find(|(s, _)| *s == size) {
            Some((_, n)) => *n += delta,
            None => chunks.push((size, delta)),
        }
    }

    fn chunks_of(size: usize) -> isize {
        let chunks = CHUNKS.lock().unwrap_or_else(|e| e.into_inner());
        chunks
            .iter()
            .find(|(s, _)| *s == size)
            .map_or(0, |(_, n)| *n)
    }

    #[test]
    fn sizes_are_checked_and_rounded() {
        assert!(matches!(
            usable_size(1024),
            Err(Error::InvalidStackSize { .. })
        ));
        assert!(usable_size(MAX_STACK_SIZE + 1).is_err());
        let s = usable_size(MIN_STACK_SIZE + 1).unwrap();
        assert_eq!(s % page_size(), 0);
        assert!(s > MIN_STACK_SIZE);
    }

    #[test]
    fn the_guard_page_refuses_access() {
        let stack = Stack::get(usable_size(MIN_STACK_SIZE).unwrap()).unwrap();
        // SAFETY: the guard is the first page of the stack's slot.
        assert!(unsafe { guard_refuses_access(stack.guard().start as *mut u8) });
        // SAFETY: the lowest usable page is ordinary memory of the same slot.
        assert!(!unsafe { guard_refuses_access(stack.guard().end as *mut u8) });
    }

    #[test]
    fn pool_reuses_a_freed_stack() {
        let size = usable_size(48 << 10).unwrap();
        let a = Stack::get(size).unwrap();
        let top = a.top();
        a.recycle();
        let b = Stack::get(size).unwrap();
        assert_eq!(b.top(), top, "the pooled stack is handed out again");
        // The usable range is writable end to end.
        // SAFETY: the bytes just below top and at the lowest usable address are ours.
        unsafe {
            b.top().sub(1).write(1);
            (b.guard().end as *mut u8).write(1);
        }
    }

    /// Runs `f` on a fresh thread, so that it starts with an empty pool and registry.
    fn on_fresh_thread(f: impl FnOnce() + Send + 'static) {
        std::thread::spawn(f).join().unwrap();
    }

    #[test]
    fn stacks_are_carved_side_by_side_each_with_its_guard() {
        on_fresh_thread(|| {
            let size = usable_size(MIN_STACK_SIZE).unwrap();
            let stacks: Vec<Stack> = (0..3).map(|_| Stack::get(size).unwrap()).collect();
            for pair in stacks.windows(2) {
                assert_eq!(
                    pair[0].top() as usize,
                    pair[1].guard().start,
                    "the next stack's guard sits right above the previous stack"
                );
            }
            for s in &stacks {
                // SAFETY: each guard is the first page of its slot.
                assert!(unsafe { guard_refuses_access(s.guard().start as *mut u8) });
            }
        });
    }

    #[test]
    fn a_slot_given_back_keeps_its_guard_and_its_pages() {
        on_fresh_thread(|| {
            let size = usable_size(MIN_STACK_SIZE).unwrap();
            fill_hot_pool_with_another_size(size);
            let a = Stack::get(size).unwrap();
            let keep = Stack::get(size).unwrap();
            let guard = a.guard();
            // SAFETY: the byte below top is ours.
            unsafe { a.top().sub(1).write(7) };
            a.recycle();
            let b = Stack::get(size).unwrap();
            assert_eq!(b.guard(), guard, "the free slot is handed out again");
            // SAFETY: as above.
            let byte = unsafe { b.top().sub(1).read() };
            assert_eq!(
                byte, 7,
                "within the budget, its pages stay (no fault on reuse)"
            );
            // SAFETY: the guard is the first page of the slot.
            assert!(unsafe { guard_refuses_access(guard.start as *mut u8) });
            drop(keep);
        });
    }

    /// Runs a greenlet with a stack of `size` to its end and returns an address inside the
    /// stack it ran on.
    fn address_on_a_finished_greenlet(size: usize) -> usize {
        let g = crate::Greenlet::builder()
            .stack_size(size)
            .spawn(|_| {
                let local = 0u8;
                std::hint::black_box(&local) as *const u8 as usize
            })
            .unwrap();
        let at = g.switch(()).take::<usize>();
        assert!(g.is_dead());
        at
    }

    #[test]
    fn a_dying_greenlet_gives_its_stack_to_the_pool() {
        on_fresh_thread(|| {
            let size = usable_size(MIN_STACK_SIZE).unwrap();
            let at = address_on_a_finished_greenlet(size);
            assert_eq!(hot().len.get(), 1, "the dead greenlet's stack is pooled");
            let again = Stack::get(size).unwrap();
            assert!(again.usable().contains(&at), "and handed out next");
            assert_eq!(hot().len.get(), 0);
        });
    }

    #[test]
    fn a_dying_greenlet_leaves_its_stack_to_the_receiver_when_the_pool_is_full() {
        on_fresh_thread(|| {
            let size = usable_size(MIN_STACK_SIZE).unwrap();
            fill_hot_pool_with_another_size(size);
            let at = address_on_a_finished_greenlet(size);
            assert_eq!(
                hot().len.get(),
                HOT_CAPACITY,
                "the pool was full and stays full"
            );
            // The receiver gave the slot back to its chunk, which hands it out again.
            let again = Stack::get(size).unwrap();
            assert!(again.usable().contains(&at), "the slot was not lost");
        });
    }

    /// Fills this thread's hot pool with stacks of another size than `size`, so that stacks
    /// of `size` go back to their chunk.
    fn fill_hot_pool_with_another_size(size: usize) {
        let other = size + page_size();
        let fillers: Vec<Stack> = (0..HOT_CAPACITY)
            .map(|_| Stack::get(other).unwrap())
            .collect();
        fillers.into_iter().for_each(Stack::recycle);
    }

    /// Writes a marker below the top of each stack.
    fn mark(stacks: &[Stack]) {
        for s in stacks {
            // SAFETY: the byte below top is part of the stack.
            unsafe { s.top().sub(1).write(7) };
        }
    }

    /// The marker byte of a stack, and whether its guard still refuses access.
    fn marker_and_guard(s: &Stack) -> (u8, bool) {
        // SAFETY: the byte below top is part of the stack; the guard is its slot's first page.
        unsafe {
            (
                s.top().sub(1).read(),
                guard_refuses_access(s.guard().start as *mut u8),
            )
        }
    }

    #[test]
    fn an_emptied_chunk_is_kept_with_its_pages_and_guards() {
        on_fresh_thread(|| {
            let size = usable_size(MIN_STACK_SIZE).unwrap();
            fill_hot_pool_with_another_size(size);
            let stacks: Vec<Stack> = (0..5).map(|_| Stack::get(size).unwrap()).collect();
            mark(&stacks);
            drop(stacks);
            // The one stack that keeps coming back (its chunk empties each time) costs no
            // system call and no page fault.
            for _ in 0..3 {
                let s = Stack::get(size).unwrap();
                assert_eq!(marker_and_guard(&s), (7, true));
                drop(s);
            }
            let again: Vec<Stack> = (0..5).map(|_| Stack::get(size).unwrap()).collect();
            for s in &again {
                assert_eq!(marker_and_guard(s), (7, true));
            }
        });
    }

    #[test]
    fn dirty_slots_past_the_budget_are_discarded() {
        on_fresh_thread(|| {
            let size = usable_size(1 << 20).unwrap();
            let budget_slots = DIRTY_BUDGET / size;
            fill_hot_pool_with_another_size(size);
            let mut stacks: Vec<Stack> = (0..3 * budget_slots)
                .map(|_| Stack::get(size).unwrap())
                .collect();
            mark(&stacks);
            // Keep one so that the chunk never empties; free the others in order.
            let keep = stacks.remove(0);
            let freed = stacks.len();
            drop(stacks);
            let dirty = REGISTRY.with(|r| r.borrow().dirty);
            assert!(dirty <= DIRTY_BUDGET, "{dirty} dirty bytes");
            let again: Vec<Stack> = (0..freed).map(|_| Stack::get(size).unwrap()).collect();
            let still_dirty = again.iter().filter(|s| marker_and_guard(s).0 == 7).count();
            assert_eq!(still_dirty * size, dirty, "the dirty ones kept their pages");
            assert!(still_dirty < freed, "some were discarded");
            assert!(
                again.iter().all(|s| marker_and_guard(s).1),
                "every guard stays"
            );
            drop(keep);
        });
    }

    #[test]
    fn chunks_with_no_stack_left_are_unmapped_but_one() {
        on_fresh_thread(|| {
            let size = usable_size(MIN_STACK_SIZE).unwrap();
            let per_chunk = Chunk::slots_for(size);
            // Three chunks' worth, more than the hot pool holds.
            let stacks: Vec<Stack> = (0..3 * per_chunk)
                .map(|_| Stack::get(size).unwrap())
                .collect();
            let mut chunks_in_carve_order: Vec<usize> =
                stacks.iter().map(|s| s.chunk.as_ptr() as usize).collect();
            chunks_in_carve_order.dedup();
            assert_eq!(chunks_in_carve_order.len(), 3);
            drop(stacks);
            // One empty chunk is kept; its slots are handed out again.
            let kept = REGISTRY.with(|r| {
                let mut r = r.borrow_mut();
                let at = r.class_index(size);
                let class = &r.classes[at];
                assert_eq!(class.empty, 1);
                class.room.len()
            });
            assert_eq!(kept, 1, "the other empty chunks were unmapped");
            // The kept one is the first to have emptied: the lowest-carved chunk.
            let again = Stack::get(size).unwrap();
            assert_eq!(again.chunk.as_ptr() as usize, chunks_in_carve_order[0]);
        });
    }

    /// Holds a stack until this thread-local is destroyed.
    struct Late(RefCell<Option<Stack>>);

    impl Drop for Late {
        fn drop(&mut self) {
            // Runs after the registry's destructor (see below): the chunk is orphaned, and
            // this last stack unmaps it.
            self.0.borrow_mut().take();
        }
    }

    thread_local! {
        static LATE: Late = const { Late(RefCell::new(None)) };
    }

    #[test]
    fn thread_exit_unmaps_every_chunk_once_its_stacks_are_gone() {
        let size = usable_size(MIN_STACK_SIZE * 3).unwrap();
        std::thread::spawn(move || {
            // Registered before the registry, so destroyed after it (destructors run in
            // reverse order of registration).
            LATE.with(|_| ());
            let [pooled, returned, late] = [0; 3].map(|_| Stack::get(size).unwrap());
            pooled.recycle();
            drop(returned);
            LATE.with(|l| *l.0.borrow_mut() = Some(late));
            assert_eq!(chunks_of(size), 1);
        })
        .join()
        .unwrap();
        assert_eq!(chunks_of(size), 0, "the chunk outlived the thread");
    }

    #[test]
    fn thread_exit_unmaps_chunks_whose_stacks_are_all_pooled() {
        let size = usable_size(MIN_STACK_SIZE * 5).unwrap();
        std::thread::spawn(move || {
            let stacks: Vec<Stack> = (0..3 * Chunk::slots_for(size))
                .map(|_| Stack::get(size).unwrap())
                .collect();
            assert_eq!(chunks_of(size), 3);
            stacks.into_iter().for_each(Stack::recycle);
            // One chunk emptied is kept; the pool keeps the other two alive.
            assert!(chunks_of(size) >= 1);
        })
        .join()
        .unwrap();
        assert_eq!(chunks_of(size), 0, "chunks outlived the thread");
    }
}
