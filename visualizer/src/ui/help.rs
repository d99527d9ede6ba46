//! The help overlay: every key and mouse gesture.

use egui::{Color32, Id, Modal, RichText, Ui};
use greenlet::trace::State;

use super::style;

/// The keys, as shown in the overlay and the README.
pub const KEYS: [(&str, &str); 12] = [
    ("→  /  ←", "one event forward / back"),
    ("Shift+→  /  Shift+←", "next / previous switch (or throw)"),
    ("Space", "play / pause"),
    ("+  /  -", "play faster / slower"),
    ("Home  /  End", "first / last event"),
    ("Ctrl+O", "open a trace file"),
    ("F1  or  ?", "show / hide this help"),
    ("Esc", "close this help, the path field or an error"),
    ("click, drag on the timeline", "go to that event, scrub"),
    (
        "strip above the timeline",
        "click or drag: anywhere in the whole trace",
    ),
    ("wheel on the timeline", "pan (Ctrl+wheel: zoom)"),
    ("drop a .json file", "open it"),
];

/// What the timeline's marks mean, each in its colour.
pub fn timeline_marks() -> [(&'static str, Color32, &'static str); 9] {
    [
        (
            "green bar",
            style::state_colour(State::Running),
            "the greenlet runs",
        ),
        (
            "arrow, label",
            style::SWITCH,
            "a switch from lane to lane, with the value",
        ),
        (
            "red arrow",
            style::THROW,
            "a throw (or a panic climbing to the parent)",
        ),
        ("○", style::state_colour(State::Unstarted), "spawned"),
        (
            "■ / ✖ / ✖",
            style::state_colour(State::Dead),
            "returned / panicked (red) / killed (magenta)",
        ),
        ("◆", style::CURSOR, "re-parented"),
        ("▼", style::MARKER, "a step! marker"),
        ("▬", style::OUTPUT, "printed output"),
        (
            "|",
            style::state_colour(State::Dead),
            "released (its last handle dropped)",
        ),
    ]
}

/// Shows the overlay; returns whether it should close.
pub fn show(ctx: &egui::Context) -> bool {
    let mut close = false;
    let response = Modal::new(Id::unique("help")).show(ctx, |ui: &mut Ui| {
        ui.heading("Keys and mouse");
        ui.add_space(4.0);
        egui::Grid::new("keys")
            .num_columns(2)
            .spacing([24.0, 6.0])
            .striped(true)
            .show(ui, |ui| {
                for (key, what) in KEYS {
                    ui.label(RichText::new(key).monospace().strong());
                    ui.label(what);
                    ui.end_row();
                }
            });
        ui.add_space(8.0);
        ui.heading("Timeline");
        egui::Grid::new("timeline marks")
            .num_columns(2)
            .spacing([24.0, 4.0])
            .show(ui, |ui| {
                for (mark, colour, what) in timeline_marks() {
                    ui.label(RichText::new(mark).strong().color(colour));
                    ui.label(what);
                    ui.end_row();
                }
            });
        ui.add_space(8.0);
        ui.label("Each step is one event of the trace: the views show the program right after it.");
        ui.add_space(8.0);
        if ui.button("Close").clicked() {
            close = true;
        }
    });
    close || response.should_close()
}
