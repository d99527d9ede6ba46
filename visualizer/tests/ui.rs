//! The window as a user drives it: keys, buttons, the timeline, a dropped file, and what the
//! views then show, read back through AccessKit (the labels a screen reader would read).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use greenlet::trace::{EventKind, State, Trace};
use greenlet_visualizer::ui::style;
use greenlet_visualizer::{App, Origin};

/// A 1280×720 window showing `app`, settled. A long jump scrolls the lists, and rows new to
/// egui take one more frame to style: settling may take a few more frames than kittest's
/// default 4.
fn window(app: App) -> Harness<'static, App> {
    let mut harness = Harness::builder()
        .with_size([1280.0, 720.0])
        .with_max_steps(12)
        .with_context_setup(style::configure)
        .build_eframe(|_cc| app);
    harness.run();
    harness
}

/// An app showing lesson `id`.
fn lesson(id: &str) -> App {
    let mut app = App::new();
    app.load_lesson(id);
    assert_eq!(app.error(), None);
    app
}

/// Presses a key and lets the frame settle.
fn press(harness: &mut Harness<'_, App>, key: Key, times: usize) {
    for _ in 0..times {
        harness.key_press(key);
        harness.run();
    }
}

/// The text a node shows (labels carry it as their value).
fn text_of(node: &egui_kittest::Node<'_>) -> String {
    let n = node.accesskit_node();
    n.label()
        .or_else(|| n.value())
        .unwrap_or_default()
        .to_string()
}

/// The first event that is the marker whose label starts with `label`.
fn marker_index(trace: &Trace, label: &str) -> usize {
    trace
        .events
        .iter()
        .position(|e| matches!(&e.kind, EventKind::Marker { label: l, .. } if l.starts_with(label)))
        .unwrap_or_else(|| panic!("no marker {label:?}"))
}

/// The 1-based line of `needle` in the lesson file `name`.
fn line_of(name: &str, needle: &str) -> u32 {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("src/lessons")
            .join(name),
    )
    .unwrap();
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in {name}")) as u32
        + 1
}

#[test]
fn arrow_keys_walk_the_seed_lesson_and_the_views_follow() {
    let app = lesson("seed");
    let trace = app.trace().unwrap().clone();
    let mut harness = window(app);
    assert_eq!(harness.state().view_state().step, 0);

    // Walk to the first marker inside greenlet 1's body.
    let k = marker_index(&trace, "greenlet 1 runs its body");
    press(&mut harness, Key::ArrowRight, k);
    let state = harness.state().view_state();
    assert_eq!(state.step, k);
    assert_eq!(state.running.as_deref(), Some("greenlet 1"));
    let line = line_of("seed.rs", "step!(\"greenlet 1 runs its body");
    assert_eq!(state.source_line, Some(line));
    assert!(
        state
            .source_file
            .unwrap()
            .ends_with("visualizer/src/lessons/seed.rs")
    );
    // The same facts, as shown on screen.
    harness.get_by_label(&format!("Current line: {line}"));
    harness.get_by_label("Running: greenlet 1");
    harness.get_by_label(&format!("step {k} of {}", trace.events.len() - 1));
    // greenlet 1's card says it runs; main's says it is suspended.
    assert_eq!(harness.query_all_by_label("● running").count(), 1);
    harness.get_by_label("● suspended");

    // Its stack bar reports what the snapshot says.
    let g1 = trace
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some("greenlet 1"))
        .unwrap();
    let snap = trace.events[k]
        .snapshot
        .iter()
        .find(|s| s.id == g1.id)
        .unwrap();
    assert_eq!(snap.state, State::Running);
    let bar = harness.get_by_label_contains("greenlet 1 stack:");
    let label = text_of(&bar);
    assert!(
        label.contains(&format!(
            "{} in use of 1.0 MiB",
            style::bytes(snap.stack_used)
        )),
        "{label}"
    );

    // ← goes back; Home and End go to the ends.
    press(&mut harness, Key::ArrowLeft, 1);
    assert_eq!(harness.state().view_state().step, k - 1);
    press(&mut harness, Key::End, 1);
    let last = trace.events.len() - 1;
    assert_eq!(harness.state().view_state().step, last);
    press(&mut harness, Key::ArrowRight, 1);
    assert_eq!(
        harness.state().view_state().step,
        last,
        "→ at the end stays there"
    );
    press(&mut harness, Key::Home, 1);
    assert_eq!(harness.state().view_state().step, 0);
    // Everything printed by the end is in the console.
    press(&mut harness, Key::End, 1);
    harness.get_by_label("exiting program");
}

#[test]
fn shift_arrows_jump_between_switches() {
    let app = lesson("pingpong");
    let trace = app.trace().unwrap().clone();
    let switches: Vec<usize> = trace
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EventKind::Switch { .. } | EventKind::Throw { .. }))
        .map(|(i, _)| i)
        .collect();
    let mut harness = window(app);
    harness.key_press_modifiers(Modifiers::SHIFT, Key::ArrowRight);
    harness.run();
    assert_eq!(harness.state().view_state().step, switches[0]);
    harness.key_press_modifiers(Modifiers::SHIFT, Key::ArrowRight);
    harness.run();
    assert_eq!(harness.state().view_state().step, switches[1]);
    harness.key_press_modifiers(Modifiers::SHIFT, Key::ArrowLeft);
    harness.run();
    assert_eq!(harness.state().view_state().step, switches[0]);
    // After the first switch main→ping, ping runs and the status line says so.
    harness.get_by_label("Running: ping");
}

#[test]
fn buttons_move_like_keys() {
    let mut harness = window(lesson("pipeline"));
    let last = harness.state().event_count() - 1;
    harness.get_by_label("Step forward").click();
    harness.run();
    assert_eq!(harness.state().view_state().step, 1);
    harness.get_by_label("Last event").click();
    harness.run();
    assert_eq!(harness.state().view_state().step, last);
    harness.get_by_label("Step back").click();
    harness.run();
    assert_eq!(harness.state().view_state().step, last - 1);
    harness.get_by_label("First event").click();
    harness.run();
    assert_eq!(harness.state().view_state().step, 0);
    harness.get_by_label("Next switch").click();
    harness.run();
    let step = harness.state().view_state().step;
    let trace = harness.state().trace().unwrap();
    assert!(matches!(trace.events[step].kind, EventKind::Switch { .. }));
}

#[test]
fn space_plays_at_the_chosen_speed_and_pauses() {
    let mut harness = Harness::builder()
        .with_size([1280.0, 720.0])
        .with_context_setup(style::configure)
        .with_step_dt(0.25)
        .build_eframe(|_cc| lesson("generator"));
    harness.run();
    harness.key_press(Key::Space);
    harness.step();
    assert!(harness.state().view_state().playing);
    // 2 events per second by default: two seconds of frames advance about four events.
    harness.run_steps(8);
    let step = harness.state().view_state().step;
    assert!((3..=5).contains(&step), "step {step} after 2 s at 2/s");
    harness.key_press(Key::Space);
    harness.step();
    let paused_at = harness.state().view_state().step;
    // + and - change the speed, one notch at a time.
    assert_eq!(harness.state().view_state().speed, 2.0);
    harness.key_press(Key::Plus);
    harness.step();
    assert_eq!(harness.state().view_state().speed, 4.0);
    harness.key_press(Key::Minus);
    harness.key_press(Key::Minus);
    harness.step();
    assert_eq!(harness.state().view_state().speed, 1.0);
    harness.run_steps(8);
    assert!(!harness.state().view_state().playing);
    assert_eq!(harness.state().view_state().step, paused_at);
}

#[test]
fn clicking_the_timeline_jumps_to_that_event() {
    let mut harness = window(lesson("parents"));
    let timeline = harness.get_by_label_contains("Timeline, event 0 of");
    let rect = timeline.rect();
    // The lanes start below the overview strip and the axis, right of the names; at the
    // default zoom the trace fits, so the middle of the lanes is the middle of the trace.
    let point = egui::pos2(rect.right() - 40.0, rect.bottom() - 20.0);
    harness.drag_at(point);
    harness.drop_at(point);
    harness.run();
    let step = harness.state().view_state().step;
    let count = harness.state().event_count();
    assert!(
        step > count / 2,
        "clicked near the right end: step {step} of {count}"
    );
}

#[test]
fn help_opens_with_f1_and_closes_with_escape() {
    let mut harness = window(lesson("seed"));
    assert!(harness.query_by_label("Keys and mouse").is_none());
    press(&mut harness, Key::F1, 1);
    assert!(harness.state().view_state().help_open);
    harness.get_by_label("Keys and mouse");
    harness.get_by_label("play / pause");
    press(&mut harness, Key::Escape, 1);
    assert!(!harness.state().view_state().help_open);
    assert!(harness.query_by_label("Keys and mouse").is_none());
}

#[test]
fn a_truncated_trace_shows_the_readers_error_and_no_crash() {
    let mut app = App::new();
    app.load_json("broken.json", r#"{"version": 1, "program": "x", "sou"#);
    let mut harness = window(app);
    let shown = harness.get_by_label_contains("Could not open broken.json:");
    let text = text_of(&shown);
    assert!(
        text.contains("the trace file is truncated at line 1"),
        "{text}"
    );
    // The welcome page is still there to pick a lesson from.
    harness.get_by_label("1. The seed example").click();
    harness.run();
    assert_eq!(harness.state().view_state().lesson, Some("seed"));
    assert_eq!(
        harness.state().view_state().error,
        None,
        "loading clears the error"
    );
}

#[test]
fn a_bad_file_over_a_loaded_trace_keeps_the_trace_and_says_why() {
    let mut app = lesson("seed");
    app.load_json("v99.json", r#"{"version": 99}"#);
    let harness = window(app);
    harness.get_by_label(
        "Could not open v99.json: unsupported trace format version: this file has version 99, \
         this build reads version 1",
    );
    assert_eq!(harness.state().view_state().lesson, Some("seed"));
}

/// A file dropped on the window, as the native integration hands it over.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }

    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

#[test]
fn dropping_files_opens_good_ones_and_reports_bad_ones() {
    let dir = std::env::temp_dir().join(format!("greenlet-visualizer-drop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json");
    greenlet_visualizer::synthetic::trace(50, 2)
        .write(&good)
        .unwrap();
    let bad = dir.join("bad.json");
    std::fs::write(&bad, "[1, 2, 3]").unwrap();

    let mut harness = window(App::new());
    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(good.clone())));
    harness.run();
    let state = harness.state().view_state();
    assert_eq!(state.event_count, 50);
    assert_eq!(state.program.as_deref(), Some("synthetic-50"));
    harness.get_by_label(&format!("Trace: {}", good.display()));

    harness
        .input_mut()
        .dropped_files
        .push(Arc::new(Dropped(bad.clone())));
    harness.run();
    let error = harness.state().view_state().error.unwrap();
    assert!(
        error.contains("a trace is a JSON object, but this starts with '['"),
        "{error}"
    );
    harness.get_by_label(&error);
    assert_eq!(
        harness.state().view_state().event_count,
        50,
        "the good trace stays"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn picking_a_lesson_from_the_menu_records_it() {
    let mut harness = window(lesson("seed"));
    harness.get_by_label("Lessons").click();
    harness.run();
    harness
        .get_by_label("7. Deep recursion fills a stack")
        .click();
    harness.run();
    let state = harness.state().view_state();
    assert_eq!(state.lesson, Some("recursion"));
    assert_eq!(state.step, 0);
    harness.get_by_label_contains("Every call of descend keeps a 1 KiB buffer");
}

#[test]
fn the_recursion_lesson_shows_the_stack_filling_and_the_high_water_mark() {
    let app = lesson("recursion");
    let trace = app.trace().unwrap().clone();
    let mut harness = window(app);
    let at = marker_index(&trace, "level 48");
    press(&mut harness, Key::ArrowRight, at);
    let deep = trace
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some("deep"))
        .unwrap();
    let snap = trace.events[at]
        .snapshot
        .iter()
        .find(|s| s.id == deep.id)
        .unwrap();
    let label = text_of(&harness.get_by_label_contains("deep stack:"));
    assert_eq!(
        label,
        format!(
            "deep stack: {} in use of 256.0 KiB, high-water mark {}",
            style::bytes(snap.stack_used),
            style::bytes(snap.stack_high_water)
        )
    );
    assert!(
        snap.stack_used > 48 * 1024,
        "48 levels of 1 KiB: {}",
        snap.stack_used
    );
    // The frames of the suspended greenlet list the recursion, innermost first.
    press(&mut harness, Key::ArrowRight, 1); // deep switches to main: deep is suspended
    assert!(
        !harness
            .query_all_by_label("descend")
            .collect::<Vec<_>>()
            .is_empty()
    );
}

#[test]
fn view_state_of_an_empty_app() {
    let harness = window(App::new());
    let state = harness.state().view_state();
    assert_eq!(state.event_count, 0);
    assert_eq!(state.running, None);
    harness.get_by_label("Start with a lesson:");
    let _ = Origin::Memory(String::new());
}

#[test]
fn a_reparented_node_slides_to_its_new_place() {
    let app = lesson("generator");
    let trace = app.trace().unwrap().clone();
    let fibonacci = trace
        .greenlets
        .iter()
        .find(|g| g.name.as_deref() == Some("fibonacci"))
        .unwrap()
        .id;
    let moved = trace
        .events
        .iter()
        .position(|e| matches!(e.kind, EventKind::ParentChanged { id, .. } if id == fibonacci))
        .unwrap();
    let mut app = app;
    app.go_to(moved - 1);
    // Frames 50 ms apart, so the 0.3 s animation spans several.
    let mut harness = Harness::builder()
        .with_size([1280.0, 720.0])
        .with_context_setup(style::configure)
        .with_step_dt(0.05)
        .with_max_steps(30)
        .build_eframe(|_cc| app);
    harness.run();
    let node_y = |h: &Harness<'_, App>| {
        h.get_by_label_contains("tree node fibonacci:")
            .rect()
            .center()
            .y
    };
    let before = node_y(&harness);
    harness.key_press(Key::ArrowRight);
    let mut seen = Vec::new();
    for _ in 0..10 {
        harness.step();
        seen.push(node_y(&harness));
    }
    let after = *seen.last().unwrap();
    assert!(
        after > before + 10.0,
        "under consumer now, a row lower: {before} -> {after}"
    );
    assert!(
        seen.iter().any(|&y| y > before + 1.0 && y < after - 1.0),
        "no frame between {before} and {after}: {seen:?}"
    );
    let label = text_of(&harness.get_by_label_contains("tree node fibonacci:"));
    assert!(label.ends_with("parent consumer"), "{label}");
}

#[test]
fn a_path_typed_into_file_open_path_is_opened() {
    let dir = std::env::temp_dir().join(format!("greenlet-visualizer-path-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("typed.json");
    greenlet_visualizer::synthetic::trace(30, 1)
        .write(&file)
        .unwrap();

    let mut harness = window(lesson("seed"));
    harness.get_by_label("File").click();
    harness.run();
    harness.get_by_label("Open path…").click();
    harness.run();
    let field = harness.get_by_role(egui::Role::TextInput);
    assert!(
        field.is_focused(),
        "the field takes the keyboard when it opens"
    );
    field.type_text(file.to_str().unwrap());
    harness.run();
    harness.key_press(Key::Enter);
    harness.run();
    let state = harness.state().view_state();
    assert_eq!(state.program.as_deref(), Some("synthetic-30"));
    assert_eq!(state.error, None);
    assert!(
        harness.query_by_role(egui::Role::TextInput).is_none(),
        "the field closed"
    );
    // The keys step again once the field is gone.
    press(&mut harness, Key::ArrowRight, 2);
    assert_eq!(harness.state().view_state().step, 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
