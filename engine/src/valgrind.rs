//! Telling valgrind about greenlet stacks.
//!
//! Valgrind follows the stack pointer to know which memory is stack. A switch moves it by far
//! more than any frame, so unless valgrind knows the stacks, it prints "client switching
//! stacks?" and may report false errors (or hide real ones) on the new stack. The
//! `VALGRIND_STACK_REGISTER` / `VALGRIND_STACK_DEREGISTER` client requests of `valgrind.h` tell
//! it where each greenlet stack is; [`crate::stack`] makes them when a stack is made and when
//! it is given back.
//!
//! A client request is a "special instruction sequence": rotations of a register that add up
//! to a full turn (so they change nothing), then an instruction that is also a no-op. Valgrind's
//! JIT recognises the sequence and performs the request; on a real CPU it costs a few cycles and
//! returns the default value. So there is no cargo feature: the requests are always compiled
//! in (on x86_64 and aarch64; elsewhere they do nothing), and whether valgrind is there is found
//! out at run time, once (`RUNNING_ON_VALGRIND`). Outside valgrind, registering a stack is one
//! relaxed atomic load.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};

/// Request codes from `valgrind.h` (`VG_USERREQ__*`).
const RUNNING_ON_VALGRIND: usize = 0x1001;
const STACK_REGISTER: usize = 0x1501;
const STACK_DEREGISTER: usize = 0x1502;

/// Performs client request `args[0]` with arguments `args[1..]`; returns `default` when not
/// running under valgrind.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn client_request(default: usize, args: &[usize; 6]) -> usize {
    let result;
    // SAFETY: the four rotations of rdi add up to 128 bits (rdi is unchanged, but declared
    // clobbered anyway) and `xchg rbx, rbx` changes nothing, so on a CPU this only sets flags.
    // Under valgrind it reads the six words at rax (which live until the asm ends) and writes
    // the result to rdx. No stack use.
    unsafe {
        std::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            inout("rdx") default => result,
            in("rax") args.as_ptr(),
            inout("rdi") 0usize => _,
            options(nostack),
        );
    }
    result
}

#[cfg(target_arch = "aarch64")]
#[inline(always)]
fn client_request(default: usize, args: &[usize; 6]) -> usize {
    let result;
    // SAFETY: the four rotations of x12 add up to 128 bits (x12 is unchanged, but declared
    // clobbered anyway) and `orr x10, x10, x10` changes nothing, so on a CPU (or under qemu)
    // this does nothing. Under valgrind it reads the six words at x4 (which live until the asm
    // ends) and writes the result to x3. No stack use, flags untouched.
    unsafe {
        std::arch::asm!(
            "ror x12, x12, #3",
            "ror x12, x12, #13",
            "ror x12, x12, #51",
            "ror x12, x12, #61",
            "orr x10, x10, x10",
            inout("x3") default => result,
            in("x4") args.as_ptr(),
            inout("x12") 0usize => _,
            options(nostack, preserves_flags),
        );
    }
    result
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
#[inline(always)]
fn client_request(default: usize, _args: &[usize; 6]) -> usize {
    default
}

/// Whether this process runs under valgrind (asked once).
pub(crate) fn running_on_valgrind() -> bool {
    // 0: not asked yet, 1: no, 2: yes.
    static ANSWER: AtomicU8 = AtomicU8::new(0);
    match ANSWER.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let layers = client_request(0, &[RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]);
            ANSWER.store(if layers > 0 { 2 } else { 1 }, Ordering::Relaxed);
            layers > 0
        }
    }
}

/// Valgrind's id of each registered stack, by its lowest usable address. Stacks are made and
/// given back on many threads; this is only touched under valgrind.
static STACK_IDS: Mutex<BTreeMap<usize, usize>> = Mutex::new(BTreeMap::new());

/// Tells valgrind that the stack slot at `base` (its guard page first, then `size` usable
/// bytes) is a stack.
pub(crate) fn register_stack(base: *mut u8, size: usize) {
    if !running_on_valgrind() {
        return;
    }
    let start = base as usize + crate::stack::page_size();
    let id = client_request(0, &[STACK_REGISTER, start, start + size, 0, 0, 0]);
    STACK_IDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(start, id);
}

/// Tells valgrind that the stack slot at `base` is no longer a stack.
pub(crate) fn deregister_stack(base: *mut u8) {
    if !running_on_valgrind() {
        return;
    }
    let start = base as usize + crate::stack::page_size();
    let id = STACK_IDS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&start);
    if let Some(id) = id {
        client_request(0, &[STACK_DEREGISTER, id, 0, 0, 0, 0]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_harmless_outside_valgrind() {
        if running_on_valgrind() {
            return; // under valgrind, the CI step checks the requests' effect instead
        }
        assert_eq!(
            client_request(7, &[RUNNING_ON_VALGRIND, 0, 0, 0, 0, 0]),
            7,
            "outside valgrind the default comes back untouched"
        );
        let mut slot = vec![0u8; 2 * crate::stack::page_size()];
        register_stack(slot.as_mut_ptr(), crate::stack::page_size());
        deregister_stack(slot.as_mut_ptr());
        assert!(STACK_IDS.lock().unwrap().is_empty(), "nothing is recorded");
    }
}
