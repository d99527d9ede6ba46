//! Recording greenlet programs: every spawn, switch, throw, finish, re-parenting and drop, the
//! program's own markers, and a snapshot of all greenlets at each of those moments.
//!
//! ```
//! use greenlet::{root, step, trace, Greenlet};
//!
//! let t = trace::record(|| {
//!     let g = Greenlet::builder().name("worker").spawn(|v| {
//!         step!("worker got {v:?}");
//!         root().switch("paused");
//!         "done"
//!     }).unwrap();
//!     g.switch(1);
//!     g.switch(());
//! });
//! let kinds: Vec<&str> = t.events.iter().map(|e| e.kind.name()).collect();
//! assert_eq!(kinds, ["spawn", "switch", "marker", "switch", "switch", "finish", "switch", "drop"]);
//! let json = t.to_json();
//! assert_eq!(trace::Trace::from_json(&json).unwrap(), t);
//! ```
//!
//! Any program using the crate writes its trace at exit when started with
//! `GREENLET_TRACE=path.json` (the first thread to use greenlets is recorded).
//!
//! # Format (version 1)
//!
//! A trace is one JSON object, [`Trace`]:
//!
//! ```text
//! { "version": 1,
//!   "program": "seed",
//!   "source_files": [ { "path": "engine/examples/seed.rs", "text": "..." } ],
//!   "greenlets":    [ { "id": 0, "name": "main", "root": true, "stack_size": 0 }, ... ],
//!   "backtraces":   [ [ { "function": "seed::main", "file": "...", "line": 12 } ], ... ],
//!   "events": [
//!     { "time_ns": 5120, "greenlet": 0,
//!       "kind": { "type": "switch", "origin": 0, "target": 1, "value": "()" },
//!       "snapshot": [ { "id": 0, "state": "suspended", "parent": null, "stack": null,
//!                       "guard": null, "sp": 140737..., "stack_used": 0,
//!                       "stack_high_water": 0, "frames": 0, "last_value": null }, ... ] },
//!     ... ] }
//! ```
//!
//! - `greenlets` lists every greenlet seen, with what never changes (id, name, stack size).
//! - Each event has a `kind` ([`EventKind`], tagged by `"type"`): `spawn`, `switch`, `throw`,
//!   `finish` (with an [`Outcome`]: `returned`, `panicked` with the message, or `killed`),
//!   `parent_changed`, `drop`, `marker` (from [`step!`](crate::step)) and `output` (from
//!   [`trace_println!`](crate::trace_println)).
//! - Each event's `snapshot` has one [`GreenletState`] per live greenlet *right after* the
//!   event: a switch's target is already `running`. Addresses are plain integers. `frames`
//!   indexes `backtraces`, the deduplicated, symbolized stacks (innermost frame first, engine
//!   and runtime frames removed), known for suspended greenlets and for the running one at a
//!   marker.
//! - `stack_used` is the distance from the stack's top to its stack pointer;
//!   `stack_high_water` the deepest use so far (stacks are zeroed when a recorded greenlet is
//!   spawned, so this is exact to the byte).
//!
//! Readers refuse other versions, and truncated or corrupt files, with a [`ReadError`] that
//! names the problem and where it is.

mod chrome;
mod format;
mod frames;
mod read;
pub(crate) mod recorder;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

pub use format::{
    AddrRange, Event, EventKind, FORMAT_VERSION, Frame, GreenletInfo, GreenletState, Outcome,
    SourceFile, State, Trace,
};
pub use read::{ReadError, ReadErrorKind};

pub(crate) use frames::{capture as capture_frames, symbolize};

/// Records everything `program` does with greenlets on this thread and returns the trace.
///
/// # Panics
/// If this thread is already recording. A panic escaping `program` stops the recording
/// (the partial trace is discarded) and continues.
pub fn record(program: impl FnOnce()) -> Trace {
    let name = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "program".to_owned());
    record_as(&name, program)
}

/// [`record`], naming the program in the trace.
pub fn record_as(name: &str, program: impl FnOnce()) -> Trace {
    assert!(
        recorder::start(name.to_owned()),
        "greenlet::trace::record: this thread is already recording"
    );
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            if std::thread::panicking() {
                recorder::stop();
            }
        }
    }
    let guard = Stop;
    program();
    std::mem::forget(guard);
    recorder::stop().expect("the recording started above")
}

/// Whether this thread is recording (so [`step!`](crate::step) formats its label).
pub fn is_recording() -> bool {
    recorder::active()
}

/// Records a marker: the program is at `file:line`, doing `label`. Use [`step!`](crate::step).
pub fn marker(file: &str, line: u32, label: String) {
    recorder::user_event(EventKind::Marker {
        file: file.to_owned(),
        line,
        label,
    });
}

/// Records program output (what [`trace_println!`](crate::trace_println) prints).
pub fn output(text: &str) {
    recorder::user_event(EventKind::Output {
        text: text.to_owned(),
    });
}

/// Puts a source file's text in the trace, for a viewer to show next to the markers (by
/// default, files named by markers are read from disk when the recording ends).
pub fn add_source(path: &str, text: &str) {
    recorder::add_source(path.to_owned(), text.to_owned());
}

/// Says where the program is, for the trace: `step!("sending {x}")` records a marker with this
/// file, line and formatted label. Costs one thread-local check when not recording.
#[macro_export]
macro_rules! step {
    ($($arg:tt)*) => {
        if $crate::trace::is_recording() {
            $crate::trace::marker(file!(), line!(), format!($($arg)*));
        }
    };
}

/// `println!` that also records the line in the trace (a viewer's console pane shows it).
#[macro_export]
macro_rules! trace_println {
    ($($arg:tt)*) => {{
        let line = format!($($arg)*);
        println!("{line}");
        if $crate::trace::is_recording() {
            $crate::trace::output(&format!("{line}\n"));
        }
    }};
}

impl EventKind {
    /// The kind's name as written in the file (`"switch"`, `"marker"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Spawn { .. } => "spawn",
            EventKind::Switch { .. } => "switch",
            EventKind::Throw { .. } => "throw",
            EventKind::Finish { .. } => "finish",
            EventKind::ParentChanged { .. } => "parent_changed",
            EventKind::Drop { .. } => "drop",
            EventKind::Marker { .. } => "marker",
            EventKind::Output { .. } => "output",
        }
    }
}

impl Trace {
    /// The trace as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a trace always serializes")
    }

    /// Writes the trace as JSON to `path`.
    pub fn write(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        let file = std::io::BufWriter::new(std::fs::File::create(path)?);
        serde_json::to_writer(file, self).map_err(std::io::Error::other)
    }

    /// The greenlet with this id, if the trace has seen it.
    pub fn greenlet(&self, id: u64) -> Option<&GreenletInfo> {
        self.greenlets.iter().find(|g| g.id == id)
    }

    /// A display name: the greenlet's name, or `#id`.
    pub fn greenlet_label(&self, id: u64) -> String {
        match self.greenlet(id).and_then(|g| g.name.as_deref()) {
            Some(name) => name.to_owned(),
            None => format!("#{id}"),
        }
    }
}

/// Reads a source file named by a marker: as given, or relative to the current directory's
/// ancestors (cargo passes `file!()` relative to the workspace root).
pub(crate) fn read_source(path: &str) -> Option<String> {
    let direct = Path::new(path);
    if let Ok(text) = std::fs::read_to_string(direct) {
        return Some(text);
    }
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        dirs.extend(cwd.ancestors().map(Path::to_path_buf));
    }
    if let Some(manifest) = std::env::var_os("CARGO_MANIFEST_DIR") {
        dirs.extend(Path::new(&manifest).ancestors().map(Path::to_path_buf));
    }
    dirs.iter()
        .find_map(|d| std::fs::read_to_string(d.join(path)).ok())
}

/// `GREENLET_TRACE=path`: the first thread to use greenlets records, and writes at its exit.
pub(crate) fn autostart() {
    static CLAIMED: AtomicBool = AtomicBool::new(false);
    if CLAIMED.load(Ordering::Relaxed) {
        return;
    }
    let Some(path) = std::env::var_os("GREENLET_TRACE") else {
        CLAIMED.store(true, Ordering::Relaxed);
        return;
    };
    if CLAIMED.swap(true, Ordering::Relaxed) {
        return;
    }
    let program = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "program".to_owned());
    if recorder::start(program) {
        // Registered after the recorder's own thread-local, so destroyed before it.
        let _ = AUTOSAVE.try_with(|a| *a.borrow_mut() = Some(AutoSave(PathBuf::from(path))));
    }
}

struct AutoSave(PathBuf);

impl Drop for AutoSave {
    fn drop(&mut self) {
        if let Some(trace) = recorder::stop() {
            match trace.write(&self.0) {
                Ok(()) => {}
                Err(e) => eprintln!(
                    "greenlet: could not write the trace to {}: {e}",
                    self.0.display()
                ),
            }
        }
    }
}

thread_local! {
    static AUTOSAVE: std::cell::RefCell<Option<AutoSave>> = const { std::cell::RefCell::new(None) };
}
