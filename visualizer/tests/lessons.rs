//! Every lesson records a real program whose trace shows what its explanation promises, and
//! whose markers point at its own `step!` lines in the source the trace carries.

use greenlet::trace::{EventKind, Outcome, State, Trace};
use greenlet_visualizer::frames::{display_name, program_frames};
use greenlet_visualizer::lessons;

fn record(id: &str) -> Trace {
    lessons::load(lessons::find(id).unwrap()).unwrap()
}

/// The program's output, line by line.
fn output(trace: &Trace) -> Vec<String> {
    trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Output { text } => Some(text.trim_end().to_owned()),
            _ => None,
        })
        .collect()
}

fn id_of(trace: &Trace, name: &str) -> u64 {
    trace
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no greenlet {name}"))
        .id
}

#[test]
fn every_lesson_carries_its_own_source_and_its_markers_point_at_step_lines() {
    for lesson in &lessons::ALL {
        let trace = record(lesson.id);
        assert_eq!(trace.program, lesson.id);
        let file = format!("visualizer/src/lessons/{}.rs", lesson.id);
        let source = trace
            .source_files
            .iter()
            .find(|f| f.path.ends_with(&file))
            .unwrap_or_else(|| panic!("{}: no source {file}", lesson.id));
        let on_disk = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("src/lessons/{}.rs", lesson.id)),
        )
        .unwrap();
        assert_eq!(
            source.text, on_disk,
            "{}: the trace shows exactly the lesson's file",
            lesson.id
        );
        let lines: Vec<&str> = source.text.lines().collect();
        let mut markers = 0;
        for e in &trace.events {
            if let EventKind::Marker { file, line, .. } = &e.kind {
                markers += 1;
                assert_eq!(file, &source.path, "{}", lesson.id);
                let text = lines[*line as usize - 1];
                assert!(
                    text.contains("step!("),
                    "{}: line {line} is {text:?}",
                    lesson.id
                );
            }
        }
        assert!(markers >= 5, "{}: only {markers} markers", lesson.id);
        assert!(!output(&trace).is_empty(), "{}: prints nothing", lesson.id);
        assert!(!lesson.explanation.is_empty() && !lesson.title.is_empty());
    }
}

#[test]
fn seed_prints_what_the_seed_example_prints() {
    assert_eq!(
        output(&record("seed")),
        [
            "entering greenlet 1",
            "in func1 (greenlet 1)",
            "re-entering greenlet 1",
            "exiting func1 (greenlet 1)",
            "exiting program",
        ]
    );
}

#[test]
fn pingpong_switches_straight_between_the_players() {
    let trace = record("pingpong");
    let (ping, pong) = (id_of(&trace, "ping"), id_of(&trace, "pong"));
    let direct = trace
        .events
        .iter()
        .filter(|e| {
            matches!(e.kind, EventKind::Switch { origin, target, .. }
            if (origin, target) == (ping, pong) || (origin, target) == (pong, ping))
        })
        .count();
    assert!(direct >= 4, "{direct} direct switches");
    // pong is killed when main drops it.
    assert!(trace.events.iter().any(|e| matches!(e.kind,
        EventKind::Finish { id, outcome: Outcome::Killed } if id == pong)));
    assert_eq!(output(&trace).last().unwrap(), "done after 4 hits");
}

#[test]
fn the_generator_reparents_itself_to_whoever_asks() {
    let trace = record("generator");
    let fib = id_of(&trace, "fibonacci");
    let consumer = id_of(&trace, "consumer");
    assert!(trace.events.iter().any(|e| matches!(e.kind,
        EventKind::ParentChanged { id, new: Some(n), .. } if id == fib && n == consumer)));
    let got: Vec<String> = output(&trace)
        .into_iter()
        .filter(|l| l.starts_with("consumer got"))
        .collect();
    assert_eq!(
        got,
        [
            "consumer got 0",
            "consumer got 1",
            "consumer got 1",
            "consumer got 2",
            "consumer got 3"
        ]
    );
    let countdown = id_of(&trace, "countdown");
    assert!(trace.events.iter().any(|e| matches!(e.kind,
        EventKind::Finish { id, outcome: Outcome::Killed } if id == countdown)));
}

#[test]
fn the_pipeline_totals_the_kept_lines() {
    let trace = record("pipeline");
    let out = output(&trace);
    assert!(
        out.contains(&"filter: dropped a comment".to_owned()),
        "{out:?}"
    );
    assert_eq!(out.last().unwrap(), "total: 15");
    assert_eq!(trace.greenlets.len(), 4, "main and three stages");
}

#[test]
fn return_values_climb_past_dead_parents_and_a_dead_greenlet_forwards_switches() {
    let trace = record("parents");
    let (leaf, collector) = (id_of(&trace, "leaf"), id_of(&trace, "collector"));
    // A switch aimed at leaf after it died lands on collector (its first live ancestor).
    let into_dead = trace.events.windows(2).any(|w| {
        let before = &w[0].snapshot;
        let dead = before
            .iter()
            .any(|s| s.id == leaf && s.state == State::Dead);
        dead && matches!(w[1].kind, EventKind::Switch { target, .. } if target == collector)
    });
    assert!(into_dead, "no switch into dead leaf reached collector");
    let out = output(&trace);
    assert!(out.contains(&"collector received 41".to_owned()), "{out:?}");
    assert!(
        out.contains(&"collector received 100".to_owned()),
        "{out:?}"
    );
    assert!(
        out.contains(&"main got its own 7 back at once".to_owned()),
        "{out:?}"
    );
}

#[test]
fn panics_throw_and_kill_each_leave_their_mark() {
    let trace = record("panics");
    let (sensor, server) = (id_of(&trace, "sensor"), id_of(&trace, "server"));
    let finished = |who: u64| {
        trace.events.iter().find_map(|e| match &e.kind {
            EventKind::Finish { id, outcome } if *id == who => Some(outcome.clone()),
            _ => None,
        })
    };
    assert_eq!(
        finished(sensor),
        Some(Outcome::Panicked {
            message: "sensor returned garbage".to_owned()
        })
    );
    assert_eq!(finished(server), Some(Outcome::Killed));
    let throws: Vec<&str> = trace
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Throw {
                target, payload, ..
            } if *target == server => Some(payload.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(throws.len(), 2, "the throw and the kill: {throws:?}");
    assert!(throws[0].contains("disk full"), "{throws:?}");
    let out = output(&trace);
    assert!(
        out.contains(&"main caught: sensor returned garbage".to_owned()),
        "{out:?}"
    );
    assert!(
        out.contains(&"server: cleanup runs while the stack unwinds".to_owned()),
        "{out:?}"
    );
}

#[test]
fn recursion_fills_a_good_part_of_the_stack_and_stops_well_before_its_end() {
    let trace = record("recursion");
    let deep = trace
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some("deep"))
        .unwrap();
    assert_eq!(deep.stack_size, 256 * 1024);
    let peak = trace
        .events
        .iter()
        .flat_map(|e| e.snapshot.iter())
        .filter(|s| s.id == deep.id)
        .map(|s| s.stack_high_water)
        .max()
        .unwrap();
    // Unoptimised builds use more stack per call than release builds: this is the worst case.
    assert!(peak > 48 * 1024, "48 levels of a 1 KiB buffer, peak {peak}");
    assert!(
        peak < deep.stack_size * 3 / 4,
        "too close to the guard page: {peak}"
    );
    // While suspended at level 48 its frames show the recursion.
    let deepest = trace
        .events
        .iter()
        .flat_map(|e| e.snapshot.iter())
        .filter(|s| s.id == deep.id && s.state == State::Suspended)
        .filter_map(|s| s.frames)
        .map(|f| {
            trace.backtraces[f as usize]
                .iter()
                .filter(|f| f.function.ends_with("descend"))
                .count()
        })
        .max()
        .unwrap();
    assert!(deepest >= 48, "{deepest} descend frames");
}

#[test]
fn a_suspended_greenlet_is_seen_inside_its_body_function() {
    let trace = record("pingpong");
    let pong = id_of(&trace, "pong");
    let suspended_in: Vec<String> = trace
        .events
        .iter()
        .flat_map(|e| e.snapshot.iter())
        .filter(|s| s.id == pong && s.state == State::Suspended)
        .filter_map(|s| s.frames)
        .flat_map(|f| {
            program_frames(&trace.backtraces[f as usize])
                .into_iter()
                .map(display_name)
        })
        .collect();
    assert!(
        suspended_in.iter().any(|name| name == "pong"),
        "pong's frames while suspended: {suspended_in:?}"
    );
}

#[test]
fn unknown_lessons_are_refused_with_the_list() {
    assert!(lessons::find("nope").is_none());
    assert_eq!(
        lessons::ids(),
        "seed, pingpong, generator, pipeline, parents, panics, recursion"
    );
}
