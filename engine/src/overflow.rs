//! Stack overflow detection: a `SIGSEGV`/`SIGBUS` handler that recognises a fault in the
//! running greenlet's guard page.
//!
//! On such a fault it prints
//! `greenlet '<name>' (#<id>) has overflowed its stack (<size>)` and aborts, like Rust's own
//! "thread has overflowed its stack". Any other fault is handed to the handler that was
//! installed before (Rust's runtime installs one for thread stack overflows) or, if there was
//! none, to the default action, so ordinary crashes stay ordinary.
//!
//! The handler runs on the thread's alternate signal stack (the faulting stack is unusable);
//! [`ensure_altstack`] gives every thread that uses greenlets one if it has none.

use std::cell::Cell;
use std::fmt::Write as _;
use std::mem::MaybeUninit;
use std::sync::Once;

/// Handlers that were installed before ours, one per signal we take over.
static mut PREVIOUS: [MaybeUninit<libc::sigaction>; 2] = [MaybeUninit::uninit(); 2];
const SIGNALS: [libc::c_int; 2] = [libc::SIGSEGV, libc::SIGBUS];

/// Installs the handler once per process; the first stack mapping calls this.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for (i, &sig) in SIGNALS.iter().enumerate() {
            // SAFETY: `Once` runs this exactly once, before the handler can read PREVIOUS; the
            // sigaction structures are fully initialised (zeroed, then the fields we need).
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
                libc::sigemptyset(&mut action.sa_mask);
                let previous = &raw mut PREVIOUS[i];
                libc::sigaction(sig, &action, (*previous).as_mut_ptr());
            }
        }
    });
}

/// What the handler needs to know about the running greenlet's stack.
#[derive(Clone, Copy)]
pub(crate) struct GuardInfo {
    pub guard: (usize, usize),
    pub id: u64,
    pub name: *const str,
    pub size: usize,
}

/// Looks up the running greenlet's guard page; set by the API layer, read by the handler.
pub(crate) type Lookup = fn() -> Option<GuardInfo>;
static mut LOOKUP: Option<Lookup> = None;

/// Registers how the handler finds the running greenlet (called before `install`).
pub(crate) fn set_lookup(f: Lookup) {
    // SAFETY: called only inside the `Once` of the API layer, before any stack is mapped and so
    // before the handler is installed; afterwards the value never changes.
    unsafe { LOOKUP = Some(f) };
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    // SAFETY: LOOKUP was written before the handler was installed and is never written again.
    if let Some(lookup) = unsafe { LOOKUP }
        && let Some(g) = lookup()
        && (g.guard.0..g.guard.1).contains(&addr)
    {
        report_and_abort(&g);
    }
    chain(sig, info, ctx);
}

fn report_and_abort(g: &GuardInfo) -> ! {
    let mut buf = FixedBuf::<512>::new();
    // SAFETY: the name lives as long as the greenlet, which is running (it just faulted).
    let name = unsafe { &*g.name };
    let _ = writeln!(
        buf,
        "\ngreenlet '{}' (#{}) has overflowed its stack ({})\nfatal runtime error: stack overflow, aborting",
        name,
        g.id,
        HumanSize(g.size)
    );
    // SAFETY: write(2) and abort(3) are async-signal-safe; the buffer is valid for its length.
    unsafe {
        libc::write(2, buf.bytes().as_ptr().cast(), buf.bytes().len());
        libc::abort();
    }
}

/// Hands a fault that is not ours to whoever handled it before us.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let i = SIGNALS.iter().position(|&s| s == sig).unwrap_or(0);
    // SAFETY: PREVIOUS[i] was filled by `install` before this handler could run.
    let previous = unsafe { PREVIOUS[i].assume_init() };
    let h = previous.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default and return: the faulting instruction runs again and the kernel
        // applies the default action (a core dump for SIGSEGV), as if we were never here.
        // SAFETY: restoring a handler that was installed before is always valid.
        unsafe { libc::sigaction(sig, &previous, std::ptr::null_mut()) };
    } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler declared the three-argument form.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous handler declared the one-argument form.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// Byte sizes as people read them: "64 KiB", "1 MiB", "12345 bytes".
pub(crate) struct HumanSize(pub usize);

impl std::fmt::Display for HumanSize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0;
        if n >= 1 << 20 && n.is_multiple_of(1 << 20) {
            write!(f, "{} MiB", n >> 20)
        } else if n >= 1 << 10 && n.is_multiple_of(1 << 10) {
            write!(f, "{} KiB", n >> 10)
        } else {
            write!(f, "{n} bytes")
        }
    }
}

/// A formatting buffer that never allocates (formatting in a signal handler must not).
struct FixedBuf<const N: usize> {
    data: [u8; N],
    len: usize,
}

impl<const N: usize> FixedBuf<N> {
    fn new() -> Self {
        FixedBuf {
            data: [0; N],
            len: 0,
        }
    }
    fn bytes(&self) -> &[u8] {
        &self.data[..self.len]
    }
}

impl<const N: usize> std::fmt::Write for FixedBuf<N> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let take = s.len().min(N - self.len);
        self.data[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

/// An alternate signal stack this module mapped for the current thread, unmapped at exit.
struct AltStack {
    base: *mut libc::c_void,
    len: usize,
}

impl Drop for AltStack {
    fn drop(&mut self) {
        // SAFETY: we disable the alternate stack before unmapping it, and only if it is still
        // the one we installed (someone may have replaced it).
        unsafe {
            let mut current: libc::stack_t = std::mem::zeroed();
            libc::sigaltstack(std::ptr::null(), &mut current);
            if current.ss_sp == self.base {
                let disable = libc::stack_t {
                    ss_sp: std::ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                libc::sigaltstack(&disable, std::ptr::null_mut());
            }
            libc::munmap(self.base, self.len);
        }
    }
}

thread_local! {
    static ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// Gives the calling thread an alternate signal stack if it has none (threads made by Rust's
/// `std` already have one; threads made by C code may not).
pub(crate) fn ensure_altstack() {
    // SAFETY: an all-zero stack_t is a valid value to be overwritten by the query, and querying
    // the current alternate stack has no preconditions.
    let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above; `current` is a valid out-pointer.
    unsafe { libc::sigaltstack(std::ptr::null(), &mut current) };
    if current.ss_flags & libc::SS_DISABLE == 0 {
        return;
    }
    let len = 64 << 10;
    // SAFETY: a fresh anonymous mapping; on failure we simply go without an alternate stack
    // (a guard-page fault then kills the process without the message).
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if base == libc::MAP_FAILED {
            return;
        }
        let stack = libc::stack_t {
            ss_sp: base,
            ss_flags: 0,
            ss_size: len,
        };
        if libc::sigaltstack(&stack, std::ptr::null_mut()) != 0 {
            libc::munmap(base, len);
            return;
        }
        let _ = ALTSTACK.try_with(|a| a.set(Some(AltStack { base, len })));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_sizes() {
        assert_eq!(HumanSize(1 << 20).to_string(), "1 MiB");
        assert_eq!(HumanSize(64 << 10).to_string(), "64 KiB");
        assert_eq!(HumanSize(1000).to_string(), "1000 bytes");
    }

    #[test]
    fn fixed_buf_truncates_instead_of_allocating() {
        let mut b = FixedBuf::<4>::new();
        let _ = write!(b, "abcdef");
        assert_eq!(b.bytes(), b"abcd");
    }
}
