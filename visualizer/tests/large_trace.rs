//! A 100,000-event trace: a frame draws only what is visible, wherever it is in the trace and
//! whatever the zoom, so the work per frame does not grow with the trace.
//!
//! The checks count what a frame drew (timeline shapes and events, list and console rows), not
//! how long it took: counts are exact and do not depend on the machine.

use egui::{Key, Modifiers};
use egui_kittest::Harness;
use egui_kittest::kittest::NodeT;
use greenlet_visualizer::ui::style;
use greenlet_visualizer::ui::timeline::MIN_PX_PER_EVENT;
use greenlet_visualizer::ui::{cards, stacks, tree};
use greenlet_visualizer::{App, FrameStats, Origin, synthetic};

const WIDTH: f32 = 1280.0;

fn window(events: usize) -> Harness<'static, App> {
    window_with(events, 4)
}

fn window_with(events: usize, workers: usize) -> Harness<'static, App> {
    let mut app = App::new();
    app.load_trace(
        synthetic::trace(events, workers),
        Origin::Memory(format!("{events} events")),
    );
    let mut harness = Harness::builder()
        .with_size([WIDTH, 720.0])
        .with_max_steps(12)
        .with_context_setup(style::configure)
        .build_eframe(|_cc| app);
    harness.run();
    harness
}

/// No view's work may depend on the trace's length: at most a window's worth of each.
fn assert_bounded(stats: FrameStats, at: &str) {
    // The timeline's zoom floor: one event per MIN_PX_PER_EVENT pixels of lanes.
    let max_events = (WIDTH / MIN_PX_PER_EVENT) as usize + 2;
    assert!(stats.timeline_events <= max_events, "{at}: {stats:?}");
    // Each event draws a handful of shapes (arrow, head, label; a run bar), plus lanes, axis
    // and the 256-bucket overview strip.
    assert!(
        stats.timeline_shapes <= 4 * max_events + 400,
        "{at}: {stats:?}"
    );
    assert!(stats.timeline_events > 0, "{at}: the timeline drew nothing");
    assert!(
        stats.event_rows > 0 && stats.event_rows < 60,
        "{at}: {stats:?}"
    );
    assert!(stats.console_rows < 60, "{at}: {stats:?}");
    assert!(stats.source_rows < 60, "{at}: {stats:?}");
}

#[test]
fn a_frame_of_a_100k_event_trace_draws_only_what_is_visible() {
    let mut harness = window(100_000);
    assert_eq!(harness.state().event_count(), 100_000);
    assert_bounded(harness.state().frame_stats(), "start");

    // The middle, reached by keys like a user would.
    harness.state_mut().go_to(50_000);
    harness.run();
    harness.key_press(Key::ArrowRight);
    harness.run();
    assert_eq!(harness.state().view_state().step, 50_001);
    assert_bounded(harness.state().frame_stats(), "middle");
    // The console holds tens of thousands of lines by now, and draws a screenful.
    assert!(harness.state().frame_stats().console_rows > 0);

    // Zoomed out as far as it goes (Ctrl+wheel over the timeline), and at the end.
    let timeline = {
        use egui_kittest::kittest::Queryable;
        harness.get_by_label_contains("Timeline, event").rect()
    };
    harness.hover_at(timeline.center());
    for _ in 0..20 {
        harness.event_modifiers(
            egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Line,
                delta: egui::vec2(0.0, -10.0),
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Unknown,
                modifiers: Modifiers::COMMAND,
            },
            Modifiers::COMMAND,
        );
        harness.run_ok();
    }
    harness.key_press(Key::End);
    harness.run();
    assert_eq!(harness.state().view_state().step, 99_999);
    let zoomed_out = harness.state().frame_stats();
    assert_bounded(zoomed_out, "zoomed out at the end");
    assert!(
        zoomed_out.timeline_events > 150,
        "the wheel zoomed out: {zoomed_out:?}"
    );
}

#[test]
fn a_frame_of_a_long_trace_draws_as_much_as_one_of_a_short_trace() {
    // Same view, traces 100 times apart in length: the same work, give or take what the view
    // happens to show.
    let short = window(1_000).state().frame_stats();
    let long = window(100_000).state().frame_stats();
    assert!(
        long.timeline_shapes <= short.timeline_shapes + 50,
        "short {short:?}, long {long:?}"
    );
    assert!(
        long.event_rows <= short.event_rows + 2,
        "short {short:?}, long {long:?}"
    );
}

#[test]
fn hundreds_of_live_greenlets_draw_a_bounded_frame() {
    let mut harness = window_with(1_000, 300);
    harness.state_mut().go_to(999);
    harness.run();
    let stats = harness.state().frame_stats();
    assert_eq!(stats.cards, cards::MAX_CARDS, "{stats:?}");
    assert_eq!(stats.tree_nodes, tree::MAX_NODES, "{stats:?}");
    assert!(stats.stacks <= stacks::MAX_STACKS, "{stats:?}");
    assert_bounded(stats, "300 greenlets");
    // The card of the running greenlet is always among those shown, and the rest are counted.
    let running = harness.state().view_state().running.unwrap();
    use egui_kittest::kittest::Queryable;
    harness.get_by_label("● running");
    harness.get_by_label(&format!("tree node {running}: running, parent main"));
    harness.get_by_label("… and 285 more greenlets alive (see the timeline)");
    // The timeline shows ten of the 301 lanes: the running greenlet's among them.
    let lane = 1 + running
        .trim_start_matches("worker ")
        .parse::<usize>()
        .unwrap();
    let label = harness
        .get_by_label_contains("Timeline, event 999 of 1000, lanes")
        .accesskit_node()
        .label()
        .unwrap()
        .to_string();
    let (first, last): (usize, usize) = {
        let lanes = label.split("lanes ").nth(1).unwrap();
        let mut numbers = lanes.split(' ').filter_map(|w| w.parse().ok());
        (numbers.next().unwrap(), numbers.next().unwrap())
    };
    assert!((first..=last).contains(&lane), "lane {lane} not in {label}");
    assert!(last - first < 20, "{label}");
}
