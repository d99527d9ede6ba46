//! Greenlet stacks: `mmap`ed, lazily committed, with a guard page below, recycled per thread.
//!
//! A stack is one private anonymous mapping made with `MAP_NORESERVE`, so only the pages a
//! greenlet touches cost memory. Its lowest page is a guard: touching it raises `SIGSEGV`,
//! which [`crate::overflow`] turns into a message naming the greenlet. On Linux 6.13 and later
//! the guard is installed with `madvise(MADV_GUARD_INSTALL)`, which keeps the mapping in one
//! piece; older kernels refuse it with `EINVAL` and the guard falls back to
//! `mprotect(PROT_NONE)` (one more memory mapping per stack).
//!
//! Stacks of dead greenlets go back to a per-thread pool, so spawning a greenlet usually makes
//! no system call.

use std::cell::RefCell;
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

/// Stacks kept per thread for reuse; beyond this, freed stacks are unmapped.
const POOL_CAPACITY: usize = 64;

/// The system page size, read once.
pub(crate) fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let p = PAGE.load(Ordering::Relaxed);
    if p != 0 {
        return p;
    }
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let p = if p > 0 { p as usize } else { 4096 };
    PAGE.store(p, Ordering::Relaxed);
    p
}

/// Rounds a requested usable size up to whole pages, or explains why it is refused.
pub(crate) fn usable_size(requested: usize) -> Result<usize, Error> {
    if !(MIN_STACK_SIZE..=MAX_STACK_SIZE).contains(&requested) {
        return Err(Error::InvalidStackSize {
            requested,
            min: MIN_STACK_SIZE,
            max: MAX_STACK_SIZE,
        });
    }
    let page = page_size();
    Ok(requested.div_ceil(page) * page)
}

/// One mapped stack: `[guard page][usable bytes ... top)`.
#[derive(Debug)]
pub(crate) struct Stack {
    /// Start of the mapping, which is the start of the guard page.
    base: *mut u8,
    /// Usable bytes above the guard.
    size: usize,
}

impl Stack {
    /// A stack with `size` usable bytes (already page-rounded), from this thread's pool when one
    /// of that size is there.
    pub(crate) fn get(size: usize) -> Result<Stack, Error> {
        let pooled = POOL
            .try_with(|pool| {
                let mut pool = pool.borrow_mut();
                let at = pool.iter().rposition(|s| s.size == size)?;
                Some(pool.swap_remove(at))
            })
            .ok()
            .flatten();
        match pooled {
            Some(s) => Ok(s),
            None => Stack::map(size),
        }
    }

    /// Gives the stack back to this thread's pool, or unmaps it when the pool is full or gone.
    pub(crate) fn recycle(self) {
        let _ = POOL.try_with(|pool| {
            let mut pool = pool.borrow_mut();
            if pool.len() < POOL_CAPACITY {
                pool.push(self);
            }
        });
        // A stack not taken by the pool was dropped inside the closure (or with it), which
        // unmaps it.
    }

    fn map(size: usize) -> Result<Stack, Error> {
        let guard = page_size();
        let len = size + guard;
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
        let stack = Stack {
            base: base.cast(),
            size,
        };
        // SAFETY: the guard page is the first page of the mapping we just made.
        if let Err(errno) = unsafe { install_guard(stack.base, guard) } {
            return Err(Error::StackAllocation { size, errno });
        }
        crate::overflow::install();
        Ok(stack)
    }

    /// One past the highest usable byte; where a new context's frame goes.
    pub(crate) fn top(&self) -> *mut u8 {
        // SAFETY: base + guard + size is the end of the mapping.
        unsafe { self.base.add(page_size() + self.size) }
    }

    /// The usable range (the guard page not included).
    pub(crate) fn usable(&self) -> std::ops::Range<usize> {
        self.guard().end..self.top() as usize
    }

    /// Gives the usable pages back to the kernel: they read as zero again, so
    /// [`high_water`](Stack::high_water) measures this stack's next user only.
    pub(crate) fn discard(&self) {
        let r = self.usable();
        // SAFETY: the range is whole pages of our mapping, and no context runs on this stack
        // (it is being handed to an unstarted greenlet).
        unsafe {
            libc::madvise(
                r.start as *mut libc::c_void,
                r.end - r.start,
                libc::MADV_DONTNEED,
            )
        };
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
                resident.as_mut_ptr(),
            )
        } == 0;
        if !ok {
            return 0;
        }
        let Some(lowest) = resident.iter().position(|b| b & 1 != 0) else {
            return 0;
        };
        let start = r.start + lowest * page;
        // SAFETY: the page is resident and part of our mapping.
        let bytes = unsafe { std::slice::from_raw_parts(start as *const u8, page) };
        let first = bytes.iter().position(|&b| b != 0).unwrap_or(page);
        r.end - (start + first)
    }

    /// Usable bytes (the guard page not included).
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// The guard page's address range.
    pub(crate) fn guard(&self) -> std::ops::Range<usize> {
        self.base as usize..self.base as usize + page_size()
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the mapping is ours and no context runs on it any more (the greenlet that used
        // it is dead or was never started).
        unsafe { libc::munmap(self.base.cast(), self.size + page_size()) };
    }
}

thread_local! {
    static POOL: RefCell<Vec<Stack>> = const { RefCell::new(Vec::new()) };
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
    if GUARD_KIND.load(Ordering::Relaxed) != 2 {
        // SAFETY: forwarded from the caller.
        if unsafe { libc::madvise(base.cast(), len, MADV_GUARD_INSTALL) } == 0 {
            // The first success is checked: qemu-user (7.2 at least) accepts any advice and
            // installs nothing, which would leave every stack unguarded.
            // SAFETY: `base` was just made a guard region (or was meant to be).
            if GUARD_KIND.load(Ordering::Relaxed) == 1 || unsafe { guard_refuses_access(base) } {
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
        // SAFETY: the guard is the first page of the stack's mapping.
        assert!(unsafe { guard_refuses_access(stack.guard().start as *mut u8) });
        // SAFETY: the lowest usable page is ordinary memory of the same mapping.
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
}
