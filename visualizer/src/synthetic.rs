//! Synthetic traces of any length, built in memory without running greenlets: for tests of
//! large traces and for trying the viewer's speed (`greenlet-visualizer --synthetic 100000`).

use greenlet::trace::{
    AddrRange, Event, EventKind, FORMAT_VERSION, GreenletInfo, GreenletState, SourceFile, State,
    Trace,
};

/// The synthetic program's source: markers point at its lines.
const SOURCE: &str = "\
// A synthetic program: the workers pass a token round and round.
fn worker(me: usize) {
    loop {
        step!(\"worker works\");
        trace_println!(\"tick\");
        next_worker(me).switch(token);
    }
}
";

/// Stack size of each synthetic worker.
const STACK: u64 = 64 * 1024;

/// A trace of `events` events: `workers` greenlets (plus main) spawned first, then markers,
/// output lines and switches in turn, passing control round-robin, with a throw now and then.
/// Every event has a full snapshot, like a recorded trace.
pub fn trace(events: usize, workers: usize) -> Trace {
    let workers = workers.max(1) as u64;
    let main = 0u64;
    let mut greenlets = vec![GreenletInfo {
        id: main,
        name: Some("main".to_owned()),
        root: true,
        stack_size: 0,
    }];
    greenlets.extend((1..=workers).map(|id| GreenletInfo {
        id,
        name: Some(format!("worker {id}")),
        root: false,
        stack_size: STACK,
    }));
    let stack_of = |id: u64| {
        let end = 0x7f00_0000_0000 + id * 0x10_0000;
        AddrRange {
            start: end - STACK,
            end,
        }
    };
    let mut states: Vec<GreenletState> = vec![GreenletState {
        id: main,
        state: State::Running,
        parent: None,
        stack: None,
        guard: None,
        sp: None,
        stack_used: 0,
        stack_high_water: 0,
        frames: None,
        last_value: None,
    }];
    let mut out = Vec::with_capacity(events);
    let mut running = main;
    // Adds an event unless the trace is already long enough.
    let push = |out: &mut Vec<Event>, kind: EventKind, running: u64, states: &[GreenletState]| {
        if out.len() < events {
            out.push(Event {
                time_ns: out.len() as u64 * 1_000,
                greenlet: running,
                kind,
                snapshot: states.to_vec(),
            });
        }
    };
    for id in 1..=workers {
        let stack = stack_of(id);
        let guard = AddrRange {
            start: stack.start - 4096,
            end: stack.start,
        };
        states.push(GreenletState {
            id,
            state: State::Unstarted,
            parent: Some(main),
            stack: Some(stack),
            guard: Some(guard),
            sp: Some(stack.end),
            stack_used: 0,
            stack_high_water: 0,
            frames: None,
            last_value: None,
        });
        let kind = EventKind::Spawn {
            id,
            parent: Some(main),
            stack,
            guard,
        };
        push(&mut out, kind, running, &states);
    }
    let mut round = 0u64;
    while out.len() < events {
        round += 1;
        push(
            &mut out,
            EventKind::Marker {
                file: "synthetic.rs".to_owned(),
                line: 4,
                label: format!("round {round}"),
            },
            running,
            &states,
        );
        if round.is_multiple_of(3) {
            push(
                &mut out,
                EventKind::Output {
                    text: format!("tick {round}\n"),
                },
                running,
                &states,
            );
        }
        let target = (running + 1) % (workers + 1);
        let value = format!("{round}");
        for s in &mut states {
            if s.id == running {
                s.state = State::Suspended;
                // Stacks breathe a little, so the bars have something to show.
                s.stack_used = if s.stack.is_some() {
                    1024 + (round * 512) % (STACK / 2)
                } else {
                    0
                };
                s.stack_high_water = s.stack_high_water.max(s.stack_used);
                s.sp = s.stack.map(|r| r.end - s.stack_used);
            } else if s.id == target {
                s.state = State::Running;
                s.last_value = Some(value.clone());
            }
        }
        let kind = if round.is_multiple_of(50) {
            EventKind::Throw {
                origin: running,
                target,
                payload: format!("error {round}"),
            }
        } else {
            EventKind::Switch {
                origin: running,
                target,
                value,
            }
        };
        push(&mut out, kind, running, &states);
        running = target;
    }
    Trace {
        version: FORMAT_VERSION,
        program: format!("synthetic-{events}"),
        source_files: vec![SourceFile {
            path: "synthetic.rs".to_owned(),
            text: SOURCE.to_owned(),
        }],
        greenlets,
        backtraces: Vec::new(),
        events: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_exactly_the_requested_events_and_survives_a_round_trip() {
        let t = trace(500, 3);
        assert_eq!(t.events.len(), 500);
        assert_eq!(t.greenlets.len(), 4);
        // The engine's reader accepts it: it is a valid trace, not just a shape.
        assert_eq!(Trace::from_json(&t.to_json()).unwrap(), t);
    }
}
