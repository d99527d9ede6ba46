//! `greenlet::trace` on wasm32: the engine's trace format and reader, without the engine.
//!
//! The engine (stacks, context switches in assembly) does not build for
//! `wasm32-unknown-unknown`, but the visualizer only needs the trace *format*: the data types
//! and `Trace::from_json`. Those live in two self-contained files of the engine
//! (`trace/format.rs` and `trace/read.rs`, which use nothing but serde), so this module
//! compiles those very files instead of copying them: the web page reads exactly what the
//! native engine writes, and a change to the format reaches both builds at once. `lib.rs`
//! names this crate `greenlet` on wasm32 (`extern crate self as greenlet`), so the
//! visualizer's `use greenlet::trace::…` lines work unchanged on both targets.
//!
//! Only the few `impl Trace` helpers of the engine's `trace/mod.rs` that the visualizer calls
//! are repeated below (that file also holds the recorder, which needs the engine).

#[path = "../../../engine/src/trace/format.rs"]
mod format;
#[path = "../../../engine/src/trace/read.rs"]
mod read;

pub use format::{
    AddrRange, Event, EventKind, FORMAT_VERSION, Frame, GreenletInfo, GreenletState, Outcome,
    SourceFile, State, Trace,
};
pub use read::{ReadError, ReadErrorKind};

impl Trace {
    /// The trace as pretty-printed JSON (as the engine's `Trace::to_json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a trace always serializes")
    }

    /// The greenlet with this id, if the trace has seen it.
    pub fn greenlet(&self, id: u64) -> Option<&GreenletInfo> {
        self.greenlets.iter().find(|g| g.id == id)
    }

    /// A display name: the greenlet's name, or `#id` (as the engine's `Trace::greenlet_label`).
    pub fn greenlet_label(&self, id: u64) -> String {
        match self.greenlet(id).and_then(|g| g.name.as_deref()) {
            Some(name) => name.to_owned(),
            None => format!("#{id}"),
        }
    }
}
