//! The help overlay: every key and mouse gesture.

use egui::{Id, Modal, RichText, Ui};

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
        ui.label("Each step is one event of the trace: the views show the program right after it.");
        ui.add_space(8.0);
        if ui.button("Close").clicked() {
            close = true;
        }
    });
    close || response.should_close()
}
