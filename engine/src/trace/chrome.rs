//! Export to the Chrome trace-event format, which Perfetto and `chrome://tracing` open: one
//! track per greenlet, a slice for each time it ran, an arrow for each switch, and instant
//! events for spawns, finishes and markers.

use serde_json::{Value as Json, json};

use super::format::{EventKind, Outcome, Trace};

const PID: u64 = 1;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

impl Trace {
    /// The trace in Chrome's trace-event JSON format (`{"traceEvents": [...]}`).
    ///
    /// ```
    /// let t = greenlet::trace::record(|| { greenlet::Greenlet::new(|v| v).switch(1); });
    /// let chrome: serde_json::Value = serde_json::from_str(&t.to_chrome_json()).unwrap();
    /// assert!(chrome["traceEvents"].as_array().unwrap().len() > 3);
    /// ```
    pub fn to_chrome_json(&self) -> String {
        let mut out: Vec<Json> = Vec::new();
        out.push(json!({"name": "process_name", "ph": "M", "pid": PID,
                        "args": {"name": self.program}}));
        for (order, g) in self.greenlets.iter().enumerate() {
            out.push(json!({"name": "thread_name", "ph": "M", "pid": PID, "tid": g.id,
                            "args": {"name": format!("{} (#{})", self.greenlet_label(g.id), g.id)}}));
            out.push(
                json!({"name": "thread_sort_index", "ph": "M", "pid": PID, "tid": g.id,
                            "args": {"sort_index": order}}),
            );
        }

        // Running slices: from the moment control arrives to the moment it leaves.
        let mut running = self.events.first().map(|e| (e.greenlet, 0u64));
        let close = |out: &mut Vec<Json>, running: Option<(u64, u64)>, end: u64| {
            if let Some((g, start)) = running {
                out.push(
                    json!({"name": self.greenlet_label(g), "ph": "X", "pid": PID, "tid": g,
                                "ts": us(start), "dur": us(end.saturating_sub(start))}),
                );
            }
        };
        for (i, e) in self.events.iter().enumerate() {
            let t = e.time_ns;
            match &e.kind {
                EventKind::Switch {
                    origin,
                    target,
                    value,
                } => {
                    close(&mut out, running, t);
                    running = Some((*target, t));
                    flow(&mut out, i, *origin, *target, t, &format!("switch {value}"));
                }
                EventKind::Throw {
                    origin,
                    target,
                    payload,
                } => {
                    close(&mut out, running, t);
                    running = Some((*target, t));
                    flow(
                        &mut out,
                        i,
                        *origin,
                        *target,
                        t,
                        &format!("throw {payload}"),
                    );
                }
                EventKind::Spawn { id, .. } => {
                    instant(
                        &mut out,
                        e.greenlet,
                        t,
                        &format!("spawn {}", self.greenlet_label(*id)),
                    );
                }
                EventKind::Finish { id, outcome } => {
                    let what = match outcome {
                        Outcome::Returned { value } => format!("returned {value}"),
                        Outcome::Panicked { message } => format!("panicked: {message}"),
                        Outcome::Killed => "killed".to_owned(),
                    };
                    instant(&mut out, *id, t, &what);
                }
                EventKind::ParentChanged { id, new, .. } => {
                    let new = new.map_or("none".to_owned(), |p| self.greenlet_label(p));
                    instant(&mut out, *id, t, &format!("parent -> {new}"));
                }
                EventKind::Drop { id } => instant(&mut out, *id, t, "drop"),
                EventKind::Marker { file, line, label } => {
                    out.push(json!({"name": label, "ph": "i", "s": "t", "pid": PID,
                                    "tid": e.greenlet, "ts": us(t),
                                    "args": {"at": format!("{file}:{line}")}}));
                }
                EventKind::Output { text } => instant(&mut out, e.greenlet, t, text.trim_end()),
            }
        }
        let end = self.events.last().map_or(0, |e| e.time_ns);
        close(&mut out, running, end);
        serde_json::to_string(&json!({"traceEvents": out, "displayTimeUnit": "ns"}))
            .expect("JSON values always serialize")
    }
}

fn instant(out: &mut Vec<Json>, tid: u64, t: u64, name: &str) {
    out.push(json!({"name": name, "ph": "i", "s": "t", "pid": PID, "tid": tid, "ts": us(t)}));
}

/// A flow arrow from the origin's track to the target's, at the switch.
fn flow(out: &mut Vec<Json>, id: usize, from: u64, to: u64, t: u64, name: &str) {
    out.push(
        json!({"name": name, "cat": "switch", "ph": "s", "id": id, "pid": PID,
                    "tid": from, "ts": us(t)}),
    );
    out.push(
        json!({"name": name, "cat": "switch", "ph": "f", "bp": "e", "id": id, "pid": PID,
                    "tid": to, "ts": us(t)}),
    );
}
