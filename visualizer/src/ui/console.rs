//! The console pane: what the program printed up to the current step.

use egui::{RichText, TextStyle, Ui};

use super::style;
use crate::model::TraceModel;

/// Draws the lines printed up to event `step`, newest at the bottom; returns the rows drawn.
pub fn show(ui: &mut Ui, model: &TraceModel, step: usize) -> usize {
    let count = model.console_len(step);
    let lines = &model.console()[..count];
    if lines.is_empty() {
        ui.weak("Nothing printed yet.");
        return 0;
    }
    let row_height = ui.text_style_height(&TextStyle::Monospace);
    let mut drawn = 0;
    egui::ScrollArea::both()
        .id_salt("console")
        .auto_shrink([false, false])
        .stick_to_bottom(true)
        .show_rows(ui, row_height, lines.len(), |ui, rows| {
            for line in &lines[rows] {
                drawn += 1;
                let text = RichText::new(&line.text).monospace();
                // The line printed by the current event stands out.
                let text = if line.event == step {
                    text.color(style::OUTPUT).strong()
                } else {
                    text
                };
                // One line a row: wrapping would break the fixed row height the scrolling
                // relies on.
                ui.add(egui::Label::new(text).wrap_mode(egui::TextWrapMode::Extend));
            }
        });
    drawn
}
