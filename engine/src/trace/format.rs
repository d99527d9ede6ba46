//! The trace file format (version [`FORMAT_VERSION`]): plain serde types, written as JSON.
//!
//! Field by field documentation is on each type; the module documentation of
//! [`crate::trace`] gives the overall shape and an example.

use serde::{Deserialize, Serialize};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// A recorded greenlet program: what ran, and every event with a snapshot of all greenlets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// Always [`FORMAT_VERSION`] for traces this build writes; readers refuse other versions.
    pub version: u32,
    /// The program's name (its executable's file name unless set otherwise).
    pub program: String,
    /// Source files the markers point into, so a viewer can show the program's code.
    pub source_files: Vec<SourceFile>,
    /// Every greenlet seen during the recording, in order of appearance.
    pub greenlets: Vec<GreenletInfo>,
    /// Distinct symbolized stacks; snapshots refer to them by index.
    pub backtraces: Vec<Vec<Frame>>,
    /// What happened, in order.
    pub events: Vec<Event>,
}

/// The text of one source file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceFile {
    /// The path as the markers give it (`file!()`).
    pub path: String,
    /// The file's contents.
    pub text: String,
}

/// What does not change about a greenlet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenletInfo {
    /// The greenlet's [`id`](crate::Greenlet::id).
    pub id: u64,
    /// Its name, if it has one (roots are called `"main"`).
    pub name: Option<String>,
    /// Whether it is its thread's root (running on the thread's own stack).
    pub root: bool,
    /// Usable stack bytes (0 for a root).
    pub stack_size: u64,
}

/// An address range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddrRange {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
}

impl AddrRange {
    /// `end - start`.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }

    /// Whether the range is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One function on a stack.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frame {
    /// The demangled function name, without its hash (`"<unknown>"` without symbols).
    pub function: String,
    /// The source file, where debug info has it.
    pub file: Option<String>,
    /// The line, where debug info has it.
    pub line: Option<u32>,
}

/// One thing that happened, and the state of every live greenlet right after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Nanoseconds since the recording started.
    pub time_ns: u64,
    /// The greenlet running when it happened.
    pub greenlet: u64,
    /// What happened.
    pub kind: EventKind,
    /// Every live greenlet, by id, at this moment.
    pub snapshot: Vec<GreenletState>,
}

/// The kinds of events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventKind {
    /// A greenlet was created (or reset, which gives it a new stack).
    Spawn {
        /// The new greenlet.
        id: u64,
        /// Its parent.
        parent: Option<u64>,
        /// Its stack's usable range.
        stack: AddrRange,
        /// The guard page below the stack.
        guard: AddrRange,
    },
    /// Control passed from `origin` to `target` with a value.
    Switch {
        /// The greenlet that was running.
        origin: u64,
        /// The greenlet that runs next.
        target: u64,
        /// A short printable summary of the value.
        value: String,
    },
    /// Control passed from `origin` to `target` with a panic.
    Throw {
        /// The greenlet that was running.
        origin: u64,
        /// The greenlet in which the panic is raised.
        target: u64,
        /// The panic's message, or its type when it has none.
        payload: String,
    },
    /// A greenlet's body ended.
    Finish {
        /// The greenlet.
        id: u64,
        /// How it ended.
        outcome: Outcome,
    },
    /// A greenlet's parent changed.
    ParentChanged {
        /// The greenlet.
        id: u64,
        /// The parent before.
        old: Option<u64>,
        /// The parent after.
        new: Option<u64>,
    },
    /// A greenlet's memory was released (no handle or child refers to it any more).
    Drop {
        /// The greenlet.
        id: u64,
    },
    /// The program said where it is ([`step!`](crate::step)).
    Marker {
        /// Source file (`file!()`).
        file: String,
        /// Line (`line!()`).
        line: u32,
        /// What the program is doing.
        label: String,
    },
    /// The program printed something ([`trace::output`](crate::trace::output)).
    Output {
        /// The text, newline included when there was one.
        text: String,
    },
}

/// How a greenlet's body ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Outcome {
    /// It returned a value.
    Returned {
        /// Summary of the value.
        value: String,
    },
    /// A panic escaped it.
    Panicked {
        /// The panic message.
        message: String,
    },
    /// A `GreenletExit` escaped it (it was killed).
    Killed,
}

/// A greenlet's life stage, as in [`Greenlet`](crate::Greenlet)'s `is_*` methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Created (or reset), never switched to.
    Unstarted,
    /// Running now.
    Running,
    /// Started, waiting in a switch.
    Suspended,
    /// Its body returned or panicked.
    Dead,
}

/// One greenlet at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GreenletState {
    /// Which greenlet.
    pub id: u64,
    /// Its state.
    pub state: State,
    /// Its parent (none for a root).
    pub parent: Option<u64>,
    /// The usable range of its stack (none for a root, or once dead).
    pub stack: Option<AddrRange>,
    /// Its guard page (none for a root, or once dead).
    pub guard: Option<AddrRange>,
    /// Saved stack pointer while suspended; the current one for the running greenlet.
    pub sp: Option<u64>,
    /// Stack bytes in use: from the top of the stack down to `sp`.
    pub stack_used: u64,
    /// The deepest the stack has been used so far (page-granular where pages were reused).
    pub stack_high_water: u64,
    /// Its frames (index into [`Trace::backtraces`]) while suspended, when known.
    pub frames: Option<u32>,
    /// Summary of the last value it received.
    pub last_value: Option<String>,
}
