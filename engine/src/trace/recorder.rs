//! The per-thread recorder: the engine calls its hooks (only while recording), and it turns
//! them into [`Event`]s with snapshots.
//!
//! Stacks are captured as raw return addresses, deduplicated, and symbolized once when the
//! recording ends, so a long recording pays for symbolization per distinct stack, not per
//! event.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use super::format::{
    AddrRange, Event, EventKind, FORMAT_VERSION, GreenletInfo, GreenletState, Outcome, State, Trace,
};
use super::frames;
use crate::inner::Inner;
use crate::thread;

/// What the recorder remembers of one live greenlet between events.
#[derive(Default)]
struct Track {
    high_water: u64,
    /// Index into `Recorder::stacks` of the frames it is suspended with.
    frames: Option<u32>,
    last_value: Option<String>,
}

pub(crate) struct Recorder {
    start: Instant,
    program: String,
    greenlets: Vec<GreenletInfo>,
    /// Live greenlets by id (ids grow with creation, so this is creation order).
    live: BTreeMap<u64, *const Inner>,
    tracks: HashMap<u64, Track>,
    stacks: Vec<Vec<usize>>,
    stack_index: HashMap<Vec<usize>, u32>,
    events: Vec<Event>,
    sources: Vec<(String, String)>,
    /// A greenlet that was about to switch away at an event (the event's index, its id): its
    /// stack pointer there is an estimate until the switch has saved the real one.
    unsaved: Option<(usize, u64, *const Inner)>,
}

thread_local! {
    static RECORDER: RefCell<Option<Recorder>> = const { RefCell::new(None) };
}

/// Whether this thread is recording.
pub(crate) fn active() -> bool {
    RECORDER
        .try_with(|r| r.try_borrow().map(|r| r.is_some()).unwrap_or(true))
        .unwrap_or(false)
}

/// Starts recording on this thread; `false` if it already is.
pub(crate) fn start(program: String) -> bool {
    let started = RECORDER
        .try_with(|r| {
            let mut r = r.borrow_mut();
            if r.is_some() {
                return false;
            }
            *r = Some(Recorder {
                start: Instant::now(),
                program,
                greenlets: Vec::new(),
                live: BTreeMap::new(),
                tracks: HashMap::new(),
                stacks: Vec::new(),
                stack_index: HashMap::new(),
                events: Vec::new(),
                sources: Vec::new(),
                unsaved: None,
            });
            true
        })
        .unwrap_or(false);
    if started {
        thread::set_recording(true);
        // The running greenlet and its ancestors exist before the recording: register them so
        // that every event's snapshot is complete.
        let mut g = thread::current();
        let mut chain = Vec::new();
        while !g.is_null() {
            chain.push(g);
            // SAFETY: ancestors are kept alive by their children's links.
            g = unsafe { (*g).parent_ptr() };
        }
        with(|r| {
            for g in chain.into_iter().rev() {
                r.register(g);
            }
        });
    }
    started
}

/// Stops recording on this thread and returns what was recorded.
pub(crate) fn stop() -> Option<Trace> {
    let rec = RECORDER
        .try_with(|r| r.borrow_mut().take())
        .ok()
        .flatten()?;
    thread::set_recording(false);
    Some(rec.finish())
}

/// Runs `f` on the recorder if this thread has one (and it is not already in use).
fn with(f: impl FnOnce(&mut Recorder)) {
    let _ = RECORDER.try_with(|r| {
        if let Ok(mut r) = r.try_borrow_mut()
            && let Some(r) = r.as_mut()
        {
            f(r);
        }
    });
}

/// The running greenlet's id.
fn current_id() -> u64 {
    // SAFETY: the running greenlet is alive.
    unsafe { (*thread::current()).view().id }
}

/// An address on the running stack, close to its stack pointer.
#[inline(never)]
fn approximate_sp() -> usize {
    let marker = 0u8;
    std::hint::black_box(&marker) as *const u8 as usize
}

impl Recorder {
    fn register(&mut self, g: *const Inner) {
        // SAFETY: hooks pass live greenlets of this thread.
        let v = unsafe { (*g).view() };
        if !self.greenlets.iter().any(|i| i.id == v.id) {
            self.greenlets.push(GreenletInfo {
                id: v.id,
                name: v.name.map(str::to_owned),
                root: v.root,
                stack_size: v.stack_size as u64,
            });
        }
        self.live.insert(v.id, g);
        self.tracks.entry(v.id).or_default();
    }

    fn intern_stack(&mut self, ips: Vec<usize>) -> u32 {
        if let Some(&i) = self.stack_index.get(&ips) {
            return i;
        }
        let i = self.stacks.len() as u32;
        self.stacks.push(ips.clone());
        self.stack_index.insert(ips, i);
        i
    }

    /// Measures the running greenlet's stack use, and captures its frames when asked.
    fn observe_running(&mut self, capture: bool) {
        let cur = thread::current();
        // SAFETY: the running greenlet is alive.
        let v = unsafe { (*cur).view() };
        let sp = approximate_sp() as u64;
        let measured = v.stack.map(|s| s.high_water() as u64).unwrap_or(0);
        let used = v
            .stack
            .map(|s| (s.top() as u64).saturating_sub(sp))
            .unwrap_or(0);
        let frames = capture.then(|| self.intern_stack(frames::capture()));
        let t = self.tracks.entry(v.id).or_default();
        t.high_water = t.high_water.max(measured).max(used);
        if capture {
            t.frames = frames;
        }
    }

    /// Appends an event, with a snapshot in which `running` is the running greenlet (the
    /// switch target, for a switch that is about to happen).
    /// Puts the real saved stack pointer into the event where a greenlet was about to switch
    /// away, now that the switch has happened (every later event runs this first).
    fn settle(&mut self) {
        let Some((at, id, g)) = self.unsaved.take() else {
            return;
        };
        if cfg!(target_arch = "wasm32") {
            // A saved "stack pointer" is a continuation handle there: keep the estimate.
            return;
        }
        // SAFETY: the greenlet is alive: it is freed only after the `dropped` hook, whose event
        // settles first.
        let v = unsafe { (*g).view() };
        let (Some(stack), State::Suspended) = (v.stack, v.state) else {
            return;
        };
        let sp = v.sp as u64;
        let used = (stack.top() as u64).saturating_sub(sp);
        if let Some(entry) = self.events[at].snapshot.iter_mut().find(|e| e.id == id) {
            entry.sp = Some(sp);
            entry.stack_used = used;
            entry.stack_high_water = entry.stack_high_water.max(used);
        }
        if let Some(t) = self.tracks.get_mut(&id) {
            t.high_water = t.high_water.max(used);
        }
    }

    fn push(&mut self, kind: EventKind, running: u64) {
        self.settle();
        let here = approximate_sp() as u64;
        let current_id = current_id();
        let mut snapshot = Vec::with_capacity(self.live.len());
        for (&id, &g) in &self.live {
            // SAFETY: greenlets are removed from `live` before they are freed.
            let v = unsafe { (*g).view() };
            let t = self.tracks.get(&id);
            let mut state = v.state;
            if id == running && state != State::Dead {
                state = State::Running;
            } else if state == State::Running {
                state = State::Suspended; // the origin of a switch about to happen
            }
            let top = v.stack.map(|s| s.top() as u64);
            let sp = if id == current_id {
                Some(here)
            } else if v.state == State::Suspended && cfg!(not(target_arch = "wasm32")) {
                // On wasm32 a saved "stack pointer" is a continuation handle, not an address.
                Some(v.sp as u64)
            } else {
                None
            };
            let stack_used = match (top, sp) {
                (Some(top), Some(sp)) if state != State::Dead => top.saturating_sub(sp),
                _ => 0,
            };
            let live_stack = state != State::Dead;
            snapshot.push(GreenletState {
                id,
                state,
                parent: v.parent,
                stack: v.stack.filter(|_| live_stack).map(|s| {
                    let r = s.usable();
                    AddrRange {
                        start: r.start as u64,
                        end: r.end as u64,
                    }
                }),
                guard: v.stack.filter(|_| live_stack).map(|s| {
                    let r = s.guard();
                    AddrRange {
                        start: r.start as u64,
                        end: r.end as u64,
                    }
                }),
                sp,
                stack_used,
                stack_high_water: t.map_or(0, |t| t.high_water).max(stack_used),
                frames: match state {
                    State::Suspended | State::Running => t.and_then(|t| t.frames),
                    _ => None,
                },
                last_value: t.and_then(|t| t.last_value.clone()),
            });
        }
        let time_ns = self.start.elapsed().as_nanos() as u64;
        self.events.push(Event {
            time_ns,
            greenlet: current_id,
            kind,
            snapshot,
        });
    }

    fn finish(mut self) -> Trace {
        self.settle();
        let backtraces = frames::symbolize(&self.stacks);
        let mut sources = self.sources;
        for e in &self.events {
            if let EventKind::Marker { file, .. } = &e.kind
                && !sources.iter().any(|(p, _)| p == file)
                && let Some(text) = super::read_source(file)
            {
                sources.push((file.clone(), text));
            }
        }
        Trace {
            version: FORMAT_VERSION,
            program: self.program,
            source_files: sources
                .into_iter()
                .map(|(path, text)| super::format::SourceFile { path, text })
                .collect(),
            greenlets: self.greenlets,
            backtraces,
            events: self.events,
        }
    }
}

// ---- hooks, called by the engine while `thread::tracing()` is on ----

/// A greenlet was created or reset (it has a fresh stack and is unstarted).
pub(crate) fn spawn(g: *const Inner) {
    with(|r| {
        r.register(g);
        // SAFETY: a live greenlet, just prepared.
        let v = unsafe { (*g).view() };
        let Some(stack) = v.stack else { return };
        let (u, gd) = (stack.usable(), stack.guard());
        if let Some(t) = r.tracks.get_mut(&v.id) {
            *t = Track::default();
        }
        let running = current_id();
        r.push(
            EventKind::Spawn {
                id: v.id,
                parent: v.parent,
                stack: AddrRange {
                    start: u.start as u64,
                    end: u.end as u64,
                },
                guard: AddrRange {
                    start: gd.start as u64,
                    end: gd.end as u64,
                },
            },
            running,
        );
    });
}

/// Control is about to pass from `origin` to `target`, with a value (`Ok(summary)`) or a panic
/// (`Err(message)`). Runs on the origin's stack, so its frames are captured here.
pub(crate) fn transfer(origin: *const Inner, target: *const Inner, what: Result<String, String>) {
    with(|r| {
        // SAFETY: hooks pass live greenlets of this thread.
        let (o, t) = unsafe { ((*origin).view().id, (*target).view().id) };
        if origin == thread::current() {
            r.observe_running(true);
        }
        r.register(target);
        let kind = match what {
            Ok(value) => {
                if let Some(tr) = r.tracks.get_mut(&t) {
                    tr.last_value = Some(value.clone());
                }
                EventKind::Switch {
                    origin: o,
                    target: t,
                    value,
                }
            }
            Err(payload) => EventKind::Throw {
                origin: o,
                target: t,
                payload,
            },
        };
        r.push(kind, t);
        if origin == thread::current() {
            // SAFETY: a live greenlet (see above).
            let dying = unsafe { (*origin).view().state } == State::Dead;
            if !dying {
                r.unsaved = Some((r.events.len() - 1, o, origin));
            }
        }
    });
}

/// A greenlet's body ended (it is marked dead already).
pub(crate) fn finish(g: *const Inner, outcome: Outcome) {
    with(|r| {
        // SAFETY: a live greenlet.
        let id = unsafe { (*g).view().id };
        if g == thread::current() {
            r.observe_running(false);
        }
        if let Some(t) = r.tracks.get_mut(&id) {
            t.frames = None;
        }
        let running = current_id();
        r.push(EventKind::Finish { id, outcome }, running);
    });
}

/// A greenlet's parent changed.
pub(crate) fn parent_changed(g: *const Inner, old: Option<u64>, new: Option<u64>) {
    with(|r| {
        // SAFETY: a live greenlet.
        let id = unsafe { (*g).view().id };
        let running = current_id();
        r.push(EventKind::ParentChanged { id, old, new }, running);
    });
}

/// A greenlet is about to be freed.
pub(crate) fn dropped(g: *const Inner) {
    with(|r| {
        // SAFETY: still alive until the caller frees it.
        let id = unsafe { (*g).view().id };
        if r.live.remove(&id).is_some() {
            let running = current_id();
            r.push(EventKind::Drop { id }, running);
        }
    });
}

/// A user marker or output line.
pub(crate) fn user_event(kind: EventKind) {
    with(|r| {
        r.observe_running(true);
        let running = current_id();
        r.push(kind, running);
    });
}

/// Registers a source file's text for the trace.
pub(crate) fn add_source(path: String, text: String) {
    with(|r| {
        if let Some(slot) = r.sources.iter_mut().find(|(p, _)| *p == path) {
            slot.1 = text;
        } else {
            r.sources.push((path, text));
        }
    });
}
