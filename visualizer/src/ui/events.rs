//! The event list: every event of the trace, the current one selected; click to go there.

use egui::{Color32, RichText, TextStyle, Ui};
use greenlet::trace::EventKind;

use super::style;
use crate::model::TraceModel;

/// What the list remembers between frames.
#[derive(Debug, Default)]
pub struct EventList {
    /// The step the list last scrolled to, so it scrolls only when the step moves.
    scrolled_to: Option<usize>,
}

/// What the list did this frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EventListOutput {
    /// The user clicked this event.
    pub jump: Option<usize>,
    /// Rows drawn this frame.
    pub rows: usize,
}

impl EventList {
    /// Forgets the scroll position (a new trace was loaded).
    pub fn reset(&mut self) {
        self.scrolled_to = None;
    }

    /// Draws the rows in view around event `step`.
    pub fn show(&mut self, ui: &mut Ui, model: &TraceModel, step: usize) -> EventListOutput {
        let mut out = EventListOutput::default();
        let row_height = ui
            .text_style_height(&TextStyle::Monospace)
            .max(ui.spacing().interact_size.y);
        let area = egui::ScrollArea::vertical()
            .id_salt("events")
            .auto_shrink([false, false]);
        let scroll = self.scrolled_to != Some(step);
        self.scrolled_to = Some(step);
        area.show_rows(ui, row_height, model.len(), |ui, rows| {
            if scroll {
                super::scroll_to_row(ui, rows.start, step, row_height);
            }
            for i in rows {
                out.rows += 1;
                let Some(event) = model.event(i) else { break };
                let colour = kind_colour(&event.kind, ui.visuals().text_color());
                let text = RichText::new(format!("{i:>6}  {}", model.describe(i)))
                    .monospace()
                    .color(colour);
                let row = egui::Button::selectable(i == step, text)
                    .wrap_mode(egui::TextWrapMode::Truncate);
                if ui.add(row).clicked() {
                    out.jump = Some(i);
                    self.scrolled_to = Some(i);
                }
            }
        });
        out
    }
}

/// The colour an event kind is listed in.
fn kind_colour(kind: &EventKind, plain: Color32) -> Color32 {
    match kind {
        EventKind::Throw { .. } => style::THROW,
        EventKind::Finish {
            outcome: greenlet::trace::Outcome::Panicked { .. },
            ..
        } => style::THROW,
        EventKind::Finish {
            outcome: greenlet::trace::Outcome::Killed,
            ..
        } => style::KILL,
        EventKind::Marker { .. } => style::MARKER,
        EventKind::Output { .. } => style::OUTPUT,
        EventKind::Switch { .. } => style::SWITCH,
        _ => plain,
    }
}
