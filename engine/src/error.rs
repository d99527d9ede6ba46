//! Errors of the greenlet API, and the [`GreenletExit`] payload.

use std::fmt;

/// What went wrong in a greenlet operation that can fail.
///
/// Every variant has a readable message (`Display`):
///
/// ```
/// let g = greenlet::Greenlet::new(|v| v);
/// let err = g.set_parent(&g).unwrap_err();
/// assert_eq!(err, greenlet::Error::CyclicParent);
/// assert_eq!(err.to_string(), "cyclic parent chain");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// `set_parent` (or a builder's `parent`) would make a greenlet its own ancestor.
    CyclicParent,
    /// The root greenlet of a thread has no parent and cannot be given one.
    RootParent,
    /// `reset` was called on a greenlet that is suspended or running: its live frames would be
    /// abandoned.
    ResetActive,
    /// The root greenlet runs on the thread's own stack and cannot be reset.
    ResetRoot,
    /// The requested stack size is outside what the engine supports.
    InvalidStackSize {
        /// The size asked for, in bytes.
        requested: usize,
        /// The smallest size accepted, in bytes.
        min: usize,
        /// The largest size accepted, in bytes.
        max: usize,
    },
    /// The operating system refused to map a stack.
    StackAllocation {
        /// The stack size asked for, in bytes.
        size: usize,
        /// The `errno` reported by `mmap`.
        errno: i32,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::CyclicParent => f.write_str("cyclic parent chain"),
            Error::RootParent => f.write_str("the root greenlet cannot have a parent"),
            Error::ResetActive => {
                f.write_str("cannot reset a greenlet that is active (started and not dead)")
            }
            Error::ResetRoot => f.write_str("cannot reset the root greenlet"),
            Error::InvalidStackSize {
                requested,
                min,
                max,
            } => write!(
                f,
                "invalid stack size {requested} bytes: it must be between {min} and {max} bytes"
            ),
            Error::StackAllocation { size, errno } => write!(
                f,
                "could not map a {size}-byte greenlet stack: {}",
                std::io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

impl std::error::Error for Error {}

/// The payload that kills a greenlet quietly (Python's `GreenletExit`).
///
/// [`Greenlet::kill`](crate::Greenlet::kill) throws it. If it escapes the body, the greenlet
/// is dead and its parent receives it **as a value**, not as a panic:
///
/// ```
/// use greenlet::{root, Greenlet, GreenletExit};
///
/// let g = Greenlet::new(|_| { root().switch(()); unreachable!() });
/// g.switch(());
/// let got = g.kill();
/// assert!(got.is::<GreenletExit>());
/// assert!(g.is_dead());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct GreenletExit;

impl fmt::Display for GreenletExit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GreenletExit")
    }
}
