//! The conformance scenarios (`greenlet_conformance::scenarios`) compiled for wasm32, behind
//! the one export the runtime calls inside its root continuation: `greenlet_main(command)`.
//! The command's top byte is an operation, its low 24 bits an argument:
//!
//! - `0`: run scenario `arg / 2` in mode `arg % 2` (0 plain, 1 traced);
//! - `1`: the scenario names;
//! - `2`: the benchmark ping-pong, `arg` round trips; its result is the greenlet's count.
//!
//! The result is text (events one per line), left in guest memory: the return value is the
//! address of an `[address, length]` pair, valid until the next command.

#![cfg(target_arch = "wasm32")]

use std::cell::UnsafeCell;

use greenlet_conformance::scenarios::{self, Mode};

/// The last result, kept for the host to read.
struct Out(UnsafeCell<(String, [u32; 2])>);

// SAFETY: wasm32-unknown-unknown (without the atomics feature) runs one thread.
unsafe impl Sync for Out {}

static OUT: Out = Out(UnsafeCell::new((String::new(), [0; 2])));

#[unsafe(no_mangle)]
pub extern "C" fn greenlet_main(command: i32) -> i32 {
    let (op, arg) = ((command as u32) >> 24, (command as u32) & 0xff_ffff);
    let text = match op {
        0 => {
            let mode = if arg % 2 == 0 {
                Mode::Plain
            } else {
                Mode::Traced
            };
            scenarios::run_index((arg / 2) as usize, mode).join("\n")
        }
        1 => scenarios::names().join("\n"),
        2 => greenlet_conformance::bench::pingpong(arg).to_string(),
        _ => panic!("unknown command {command:#x}"),
    };
    // SAFETY: one thread, and the host has copied the previous result out before sending
    // this command, so nothing reads the old string any more.
    let out = unsafe { &mut *OUT.0.get() };
    out.0 = text;
    out.1 = [out.0.as_ptr() as u32, out.0.len() as u32];
    out.1.as_ptr() as i32
}
