//! Greenlets: symmetric, stackful coroutines in the spirit of Python's `greenlet`.
//!
//! A greenlet is a function running on its own stack. Any greenlet can [`switch`] to any other
//! greenlet of its thread, handing it a [`Value`]; the switch returns when someone switches
//! back. When a greenlet's body returns, its result goes to its [`parent`]; when it panics, the
//! panic is raised in the parent. Every thread has a [`root`] greenlet: the thread itself.
//!
//! ```
//! use greenlet::{root, Greenlet};
//!
//! let g = Greenlet::new(|v| {
//!     println!("in the greenlet, got {}", v.take::<&str>());
//!     root().switch("suspended");      // back to the root, which resumes below
//!     "finished"                       // delivered to the parent (the root)
//! });
//! assert_eq!(g.switch("hello").take::<&str>(), "suspended");
//! assert_eq!(g.switch(()).take::<&str>(), "finished");
//! assert!(g.is_dead());
//! ```
//!
//! The rules every backend follows are those of the project's `semantics.md`; in short:
//! - [`switch`] to an unstarted greenlet starts its body with the value; to a suspended one,
//!   makes its pending `switch` return the value; to a dead one, goes to its first live
//!   ancestor; to the running one, returns the value at once.
//! - [`throw`] raises a panic payload at the target's suspension point; [`kill`] throws
//!   [`GreenletExit`], which arrives in the parent as a value, not a panic.
//! - Dropping the last handle to a suspended greenlet kills it, running every `Drop` on its
//!   stack.
//! - Handles are neither `Send` nor `Sync`: greenlets never leave their thread.
//!
//! # Machinery
//! Stacks are `mmap`ed with a guard page below (see [`DEFAULT_STACK_SIZE`]) and recycled per
//! thread. A stack overflow ends the process with
//! `greenlet '<name>' (#<id>) has overflowed its stack (<size>)` instead of corrupting memory.
//! The switch is a few instructions of assembly (`asm/` at the repository root documents the
//! stack layout and every saved register).
//!
//! The floating-point control state (x86_64 MXCSR and x87 control word) is shared by all
//! greenlets of a thread, as in corosensei and Python's greenlet: changing the rounding mode
//! in one greenlet changes it for the others.
//!
//! [`switch`]: Greenlet::switch
//! [`throw`]: Greenlet::throw
//! [`kill`]: Greenlet::kill
//! [`parent`]: Greenlet::parent

#![warn(missing_docs)]

mod arch;
mod asan;
mod body;
mod error;
mod greenlet;
mod inner;
// wasm32 has neither signals nor mmap: its own (small) versions of these two modules.
#[cfg_attr(target_arch = "wasm32", path = "overflow_wasm32.rs")]
mod overflow;
mod spare;
#[cfg_attr(target_arch = "wasm32", path = "stack_wasm32.rs")]
mod stack;
mod switch;
mod thread;
pub mod trace;
mod tracer;
// Valgrind registers native stacks; wasm32 has no valgrind and its stacks are heap blocks.
#[cfg(not(target_arch = "wasm32"))]
mod valgrind;
mod value;

pub use error::{Error, GreenletExit};
pub use greenlet::{Builder, Greenlet, current, root};
pub use stack::{DEFAULT_STACK_SIZE, MAX_STACK_SIZE, MIN_STACK_SIZE, guard_uses_madvise};
pub use tracer::{Event, Tracer, gettrace, settrace};
pub use value::Value;
