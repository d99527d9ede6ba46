//! A loaded trace plus the indices the views need, all computed once when the trace is loaded,
//! so that drawing a frame never walks the whole trace.

use std::collections::HashMap;

use greenlet::trace::{Event, EventKind, GreenletState, Outcome, State, Trace};

/// One greenlet's row in the timeline, and what never changes about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// The greenlet's id.
    pub id: u64,
    /// Its display name (its name, or `#id`).
    pub label: String,
    /// Whether it is a thread's root.
    pub root: bool,
    /// Usable stack bytes (0 for a root).
    pub stack_size: u64,
    /// The first event at which it exists (its spawn, or 0 for a root).
    pub first_event: usize,
    /// The event that released it, if it was released during the recording.
    pub dropped_at: Option<usize>,
}

/// One line the program printed, and the event that printed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleLine {
    /// Index of the output event.
    pub event: usize,
    /// The line, without its newline.
    pub text: String,
}

/// A source file split into lines for drawing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceText {
    /// The path as the markers name it.
    pub path: String,
    /// The file's lines.
    pub lines: Vec<String>,
}

/// Number of buckets in the switch-density overview of the whole trace.
pub const OVERVIEW_BUCKETS: usize = 256;

/// A trace ready to be shown.
#[derive(Debug)]
pub struct TraceModel {
    trace: Trace,
    lanes: Vec<Lane>,
    lane_of: HashMap<u64, usize>,
    /// Lane of the greenlet running right after each event.
    running_lane: Vec<u32>,
    /// Events that pass control (switches and throws), in order.
    transfers: Vec<usize>,
    /// Marker events, in order.
    markers: Vec<usize>,
    /// Marker events per greenlet (the greenlet that ran the marker), in order.
    markers_by_greenlet: HashMap<u64, Vec<usize>>,
    console: Vec<ConsoleLine>,
    sources: Vec<SourceText>,
    largest_stack: u64,
    overview: Vec<u32>,
}

impl TraceModel {
    /// Indexes `trace`. Linear in its size; done once per load.
    pub fn new(trace: Trace) -> TraceModel {
        let mut lanes: Vec<Lane> = Vec::new();
        let mut lane_of: HashMap<u64, usize> = HashMap::new();
        for g in &trace.greenlets {
            lane_of.insert(g.id, lanes.len());
            lanes.push(Lane {
                id: g.id,
                label: trace.greenlet_label(g.id),
                root: g.root,
                stack_size: g.stack_size,
                first_event: 0,
                dropped_at: None,
            });
        }
        let mut ensure_lane = |id: u64, lanes: &mut Vec<Lane>| -> usize {
            *lane_of.entry(id).or_insert_with(|| {
                lanes.push(Lane {
                    id,
                    label: format!("#{id}"),
                    root: false,
                    stack_size: 0,
                    first_event: 0,
                    dropped_at: None,
                });
                lanes.len() - 1
            })
        };

        let mut running_lane = Vec::with_capacity(trace.events.len());
        let mut transfers = Vec::new();
        let mut markers = Vec::new();
        let mut markers_by_greenlet: HashMap<u64, Vec<usize>> = HashMap::new();
        let mut console = Vec::new();
        let mut current = trace.events.first().map_or(0, |e| e.greenlet);
        for (i, event) in trace.events.iter().enumerate() {
            match &event.kind {
                EventKind::Switch { target, .. } | EventKind::Throw { target, .. } => {
                    transfers.push(i);
                    ensure_lane(*target, &mut lanes);
                }
                EventKind::Spawn { id, .. } => {
                    let lane = ensure_lane(*id, &mut lanes);
                    lanes[lane].first_event = i;
                    lanes[lane].dropped_at = None;
                }
                EventKind::Drop { id } => {
                    let lane = ensure_lane(*id, &mut lanes);
                    lanes[lane].dropped_at = Some(i);
                }
                EventKind::Marker { .. } => {
                    markers.push(i);
                    markers_by_greenlet
                        .entry(event.greenlet)
                        .or_default()
                        .push(i);
                }
                EventKind::Output { text } => {
                    let body = text.strip_suffix('\n').unwrap_or(text);
                    console.extend(body.split('\n').map(|line| ConsoleLine {
                        event: i,
                        text: line.to_owned(),
                    }));
                }
                EventKind::Finish { .. } | EventKind::ParentChanged { .. } => {}
            }
            // The snapshot is taken right after the event, so it knows who runs next.
            if let Some(s) = event.snapshot.iter().find(|s| s.state == State::Running) {
                current = s.id;
            }
            running_lane.push(ensure_lane(current, &mut lanes) as u32);
        }

        let sources = trace
            .source_files
            .iter()
            .map(|f| SourceText {
                path: f.path.clone(),
                lines: f.text.lines().map(str::to_owned).collect(),
            })
            .collect();
        let largest_stack = lanes.iter().map(|l| l.stack_size).max().unwrap_or(0);
        let overview = density(&transfers, trace.events.len());
        TraceModel {
            trace,
            lanes,
            lane_of,
            running_lane,
            transfers,
            markers,
            markers_by_greenlet,
            console,
            sources,
            largest_stack,
            overview,
        }
    }

    /// The trace itself.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Number of events (steps).
    pub fn len(&self) -> usize {
        self.trace.events.len()
    }

    /// Whether the trace has no events.
    pub fn is_empty(&self) -> bool {
        self.trace.events.is_empty()
    }

    /// Event `i`.
    pub fn event(&self, i: usize) -> Option<&Event> {
        self.trace.events.get(i)
    }

    /// Every live greenlet right after event `i`, in lane order.
    pub fn snapshot(&self, i: usize) -> Vec<&GreenletState> {
        let mut states: Vec<&GreenletState> = self
            .event(i)
            .map(|e| e.snapshot.iter().collect())
            .unwrap_or_default();
        states.sort_by_key(|s| self.lane_index(s.id).unwrap_or(usize::MAX));
        states
    }

    /// At most `limit` of the greenlets alive after event `i`, in lane order, always including
    /// the running one and those the event is about; and how many were left out. Views with a
    /// widget or a drawing per greenlet use this, so a program with thousands of live greenlets
    /// still draws a bounded frame.
    pub fn shown(&self, i: usize, limit: usize) -> (Vec<&GreenletState>, usize) {
        let all = self.snapshot(i);
        if all.len() <= limit {
            return (all, 0);
        }
        let involved = self.event(i).map(|e| involved(&e.kind)).unwrap_or_default();
        let must = |s: &GreenletState| s.state == State::Running || involved.contains(&s.id);
        let mut room = limit.saturating_sub(all.iter().filter(|s| must(s)).count());
        let total = all.len();
        let shown: Vec<&GreenletState> = all
            .into_iter()
            .filter(|s| {
                if must(s) {
                    true
                } else if room > 0 {
                    room -= 1;
                    true
                } else {
                    false
                }
            })
            .collect();
        let hidden = total - shown.len();
        (shown, hidden)
    }

    /// The lanes, one per greenlet, in order of appearance.
    pub fn lanes(&self) -> &[Lane] {
        &self.lanes
    }

    /// The lane index of greenlet `id`.
    pub fn lane_index(&self, id: u64) -> Option<usize> {
        self.lane_of.get(&id).copied()
    }

    /// The lane of greenlet `id`.
    pub fn lane(&self, id: u64) -> Option<&Lane> {
        self.lane_index(id).map(|i| &self.lanes[i])
    }

    /// A greenlet's display name.
    pub fn label(&self, id: u64) -> &str {
        self.lane(id).map_or("?", |l| l.label.as_str())
    }

    /// The lane of the greenlet running right after event `i`.
    pub fn running_lane(&self, i: usize) -> Option<usize> {
        self.running_lane.get(i).map(|&l| l as usize)
    }

    /// The greenlet running right after event `i`.
    pub fn running(&self, i: usize) -> Option<u64> {
        self.running_lane(i).map(|l| self.lanes[l].id)
    }

    /// The next switch or throw after event `i`.
    pub fn next_transfer(&self, i: usize) -> Option<usize> {
        let k = self.transfers.partition_point(|&t| t <= i);
        self.transfers.get(k).copied()
    }

    /// The last switch or throw before event `i`.
    pub fn previous_transfer(&self, i: usize) -> Option<usize> {
        let k = self.transfers.partition_point(|&t| t < i);
        k.checked_sub(1).map(|k| self.transfers[k])
    }

    /// Number of switches and throws in the trace.
    pub fn transfer_count(&self) -> usize {
        self.transfers.len()
    }

    /// The last marker at or before event `i`: where the program is.
    pub fn marker_at(&self, i: usize) -> Option<usize> {
        let k = self.markers.partition_point(|&m| m <= i);
        k.checked_sub(1).map(|k| self.markers[k])
    }

    /// The last marker greenlet `id` ran at or before event `i`: where it was last seen.
    pub fn marker_of(&self, id: u64, i: usize) -> Option<usize> {
        let list = self.markers_by_greenlet.get(&id)?;
        let k = list.partition_point(|&m| m <= i);
        k.checked_sub(1).map(|k| list[k])
    }

    /// The file, line and label of marker event `i`.
    pub fn marker(&self, i: usize) -> Option<(&str, u32, &str)> {
        match &self.event(i)?.kind {
            EventKind::Marker { file, line, label } => Some((file, *line, label)),
            _ => None,
        }
    }

    /// Every line the program printed.
    pub fn console(&self) -> &[ConsoleLine] {
        &self.console
    }

    /// How many console lines were printed up to and including event `i`.
    pub fn console_len(&self, i: usize) -> usize {
        self.console.partition_point(|l| l.event <= i)
    }

    /// The source files of the trace.
    pub fn sources(&self) -> &[SourceText] {
        &self.sources
    }

    /// The index of the source file with this path.
    pub fn source_index(&self, path: &str) -> Option<usize> {
        self.sources.iter().position(|s| s.path == path)
    }

    /// The largest stack of any greenlet: the common scale of the stack bars.
    pub fn largest_stack(&self) -> u64 {
        self.largest_stack
    }

    /// Switches and throws per bucket of [`OVERVIEW_BUCKETS`] equal parts of the trace.
    pub fn overview(&self) -> &[u32] {
        &self.overview
    }

    /// Event `i` in words, with greenlet names: what the event list and the status line show.
    pub fn describe(&self, i: usize) -> String {
        let Some(event) = self.event(i) else {
            return String::new();
        };
        let n = |id: u64| self.label(id);
        match &event.kind {
            EventKind::Spawn { id, parent, .. } => match parent {
                Some(p) => format!("spawn {} (parent {})", n(*id), n(*p)),
                None => format!("spawn {}", n(*id)),
            },
            EventKind::Switch {
                origin,
                target,
                value,
            } => format!(
                "switch {} → {}: {}",
                n(*origin),
                n(*target),
                short_value(value)
            ),
            EventKind::Throw {
                origin,
                target,
                payload,
            } => format!("throw {} → {}: {payload}", n(*origin), n(*target)),
            EventKind::Finish { id, outcome } => match outcome {
                Outcome::Returned { value } => format!("{} returned {value}", n(*id)),
                Outcome::Panicked { message } => format!("{} panicked: {message}", n(*id)),
                Outcome::Killed => format!("{} was killed", n(*id)),
            },
            EventKind::ParentChanged { id, old, new } => format!(
                "{} re-parented: {} → {}",
                n(*id),
                old.map_or("none", n),
                new.map_or("none", n)
            ),
            EventKind::Drop { id } => format!("{} released", n(*id)),
            EventKind::Marker { label, .. } => format!("{}: {label}", n(event.greenlet)),
            EventKind::Output { text } => format!("print {:?}", text.trim_end_matches('\n')),
        }
    }
}

/// A value summary, shorter: the engine records a value it cannot print as its type name in
/// angle brackets, and the module paths in it say little (`<a::b::Item>` becomes `<Item>`,
/// `<core::option::Option<u64>>` becomes `<Option<u64>>`). Other summaries are unchanged.
pub fn short_value(summary: &str) -> String {
    if !(summary.starts_with('<') && summary.ends_with('>') && summary.contains("::")) {
        return summary.to_owned();
    }
    let mut out = String::with_capacity(summary.len());
    let mut path = String::new();
    let flush = |path: &mut String, out: &mut String| {
        out.push_str(path.rsplit("::").next().unwrap_or(""));
        path.clear();
    };
    for c in summary.chars() {
        if c.is_alphanumeric() || c == '_' || c == ':' {
            path.push(c);
        } else {
            flush(&mut path, &mut out);
            out.push(c);
        }
    }
    flush(&mut path, &mut out);
    out
}

/// The greenlets an event is about.
fn involved(kind: &EventKind) -> Vec<u64> {
    match kind {
        EventKind::Switch { origin, target, .. } | EventKind::Throw { origin, target, .. } => {
            vec![*origin, *target]
        }
        EventKind::Spawn { id, .. }
        | EventKind::Finish { id, .. }
        | EventKind::ParentChanged { id, .. }
        | EventKind::Drop { id } => vec![*id],
        EventKind::Marker { .. } | EventKind::Output { .. } => Vec::new(),
    }
}

/// Transfers per bucket, for the overview strip.
fn density(transfers: &[usize], events: usize) -> Vec<u32> {
    let mut buckets = vec![0u32; OVERVIEW_BUCKETS];
    if events == 0 {
        return buckets;
    }
    for &t in transfers {
        buckets[t * OVERVIEW_BUCKETS / events] += 1;
    }
    buckets
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic;

    #[test]
    fn indices_answer_navigation_questions() {
        let model = TraceModel::new(synthetic::trace(1_000, 3));
        assert_eq!(model.len(), 1_000);
        // Every transfer is found from the event before it, and the search never goes back.
        let first = model.next_transfer(0).unwrap();
        assert!(matches!(
            model.event(first).unwrap().kind,
            EventKind::Switch { .. } | EventKind::Throw { .. }
        ));
        assert_eq!(model.previous_transfer(first + 1), Some(first));
        assert_eq!(model.previous_transfer(first), None);
        assert_eq!(model.next_transfer(model.len() - 1), None);
        // The running greenlet after a switch is its target.
        let EventKind::Switch { target, .. } = model.event(first).unwrap().kind else {
            panic!("a switch")
        };
        assert_eq!(model.running(first), Some(target));
    }

    #[test]
    fn type_names_in_value_summaries_lose_their_paths() {
        assert_eq!(short_value("<app::lessons::pipeline::Item>"), "<Item>");
        assert_eq!(short_value("<core::option::Option<u64>>"), "<Option<u64>>");
        assert_eq!(
            short_value("<(alloc::string::String, u8)>"),
            "<(String, u8)>"
        );
        assert_eq!(
            short_value("\"a::b\""),
            "\"a::b\"",
            "a printed string stays"
        );
        assert_eq!(short_value("42"), "42");
    }

    #[test]
    fn only_so_many_greenlets_are_shown_but_always_the_running_one() {
        let model = TraceModel::new(synthetic::trace(400, 60));
        let last = model.len() - 1;
        let (all, hidden) = model.shown(last, 100);
        assert_eq!((all.len(), hidden), (61, 0));
        let (some, hidden) = model.shown(last, 10);
        assert_eq!((some.len(), hidden), (10, 51));
        let running = model.running(last).unwrap();
        assert!(some.iter().any(|s| s.id == running));
        // Lane order is kept.
        let lanes: Vec<usize> = some
            .iter()
            .map(|s| model.lane_index(s.id).unwrap())
            .collect();
        assert!(lanes.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn console_lines_appear_at_their_event() {
        let model = TraceModel::new(synthetic::trace(200, 2));
        let line = &model.console()[0];
        assert_eq!(model.console_len(line.event), 1);
        assert_eq!(model.console_len(line.event - 1), 0);
        assert_eq!(model.console_len(model.len()), model.console().len());
    }

    #[test]
    fn markers_are_found_per_greenlet() {
        let model = TraceModel::new(synthetic::trace(300, 2));
        let at = model.marker_at(299).unwrap();
        let (_, line, _) = model.marker(at).unwrap();
        assert!(line > 0);
        let g = model.event(at).unwrap().greenlet;
        assert_eq!(model.marker_of(g, 299), Some(at));
        assert!(model.marker_at(0).is_none() || model.marker(0).is_some());
    }
}
