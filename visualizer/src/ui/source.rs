//! The source pane: the program's code with the current line highlighted, and where each
//! suspended greenlet was last seen.

use egui::{Align2, Color32, FontId, Rect, Sense, Stroke, StrokeKind, TextStyle, Ui, Vec2, pos2};
use greenlet::trace::State;

use super::style;
use crate::model::TraceModel;

/// What the source pane remembers between frames.
#[derive(Debug, Default)]
pub struct SourceView {
    /// A file the user picked; `None` follows the current marker's file.
    pinned: Option<usize>,
    /// The (file, line) last scrolled to, so the pane scrolls only when the line changes.
    scrolled_to: Option<(usize, u32)>,
}

/// Source rows drawn in the last frame (for the bounded-work test).
pub type RowsDrawn = usize;

impl SourceView {
    /// Forgets the pinned file and scroll position (a new trace was loaded).
    pub fn reset(&mut self) {
        *self = SourceView::default();
    }

    /// Draws the pane for event `step`.
    pub fn show(&mut self, ui: &mut Ui, model: &TraceModel, step: usize) -> RowsDrawn {
        let current = model.marker_at(step).and_then(|m| {
            let (file, line, label) = model.marker(m)?;
            let greenlet = model.event(m)?.greenlet;
            Some((model.source_index(file), line, label, greenlet))
        });
        let sources = model.sources();
        if sources.is_empty() {
            ui.weak("This trace has no source files.");
            return 0;
        }
        let following = current.and_then(|(file, ..)| file).unwrap_or(0);
        let file = self.pinned.unwrap_or(following).min(sources.len() - 1);

        ui.horizontal(|ui| {
            if sources.len() > 1 {
                let mut choice = file;
                egui::ComboBox::from_id_salt("source file")
                    .selected_text(sources[file].path.as_str())
                    .show_ui(ui, |ui| {
                        for (i, s) in sources.iter().enumerate() {
                            ui.selectable_value(&mut choice, i, s.path.as_str());
                        }
                    })
                    .response
                    .on_hover_text("Source file");
                if choice != file {
                    self.pinned = Some(choice);
                }
                if self.pinned.is_some() && ui.small_button("follow").clicked() {
                    self.pinned = None;
                }
            } else {
                ui.monospace(sources[file].path.as_str());
            }
        });
        let line_here = current.filter(|(f, ..)| *f == Some(file));
        match current {
            Some((_, line, label, greenlet)) => {
                ui.label(format!("Current line: {line}"))
                    .on_hover_text("The last step! marker the program reached");
                ui.colored_label(style::MARKER, format!("{}: {label}", model.label(greenlet)));
            }
            None => {
                ui.weak("No step marker reached yet");
            }
        }
        ui.separator();

        // Where each greenlet last ran a marker, in this file: a running greenlet resumed right
        // after it, a suspended one waits in a switch after it.
        let mut seen: Vec<(u32, State, String)> = Vec::new();
        for s in model.shown(step, crate::ui::tree::MAX_NODES).0 {
            if !matches!(s.state, State::Running | State::Suspended) {
                continue;
            }
            if let Some((f, line, _)) = model.marker_of(s.id, step).and_then(|m| model.marker(m))
                && model.source_index(f) == Some(file)
            {
                seen.push((line, s.state, model.label(s.id).to_owned()));
            }
        }

        let lines = &sources[file].lines;
        let font = TextStyle::Monospace.resolve(ui.style());
        let row_height = ui.fonts_mut(|f| f.row_height(&font)) + 2.0;
        let area = egui::ScrollArea::both()
            .id_salt("source scroll")
            .auto_shrink([false, false]);
        let target = line_here.map(|(_, line, ..)| (file, line));
        let mut scroll_to = None;
        if target.is_some() && target != self.scrolled_to {
            self.scrolled_to = target;
            scroll_to = target.map(|(_, line)| line.saturating_sub(1) as usize);
        }
        let mut drawn = 0;
        area.show_rows(ui, row_height, lines.len(), |ui, rows| {
            if let Some(row) = scroll_to {
                super::scroll_to_row(ui, rows.start, row, row_height);
            }
            let number_width = 4.0 * ui.fonts_mut(|f| f.glyph_width(&font, '0')) + 8.0;
            for i in rows {
                drawn += 1;
                let number = i as u32 + 1;
                let text = &lines[i];
                let text_width = ui.fonts_mut(|f| f.glyph_width(&font, ' ')) * text.len() as f32;
                let width = (number_width + text_width + 8.0).max(ui.available_width());
                let (rect, _) =
                    ui.allocate_exact_size(Vec2::new(width, row_height), Sense::hover());
                paint_row(
                    ui,
                    rect,
                    RowText {
                        number,
                        text,
                        number_width,
                        font: font.clone(),
                    },
                    line_here.is_some_and(|(_, l, ..)| l == number),
                    seen.iter()
                        .filter(|(l, ..)| *l == number)
                        .map(|(_, st, n)| (*st, n.as_str())),
                );
            }
        });
        drawn
    }
}

/// A line of code and how to draw its number.
struct RowText<'a> {
    number: u32,
    text: &'a str,
    number_width: f32,
    font: FontId,
}

/// Paints one source row: highlight, line number, code, and tags of the greenlets last seen
/// there.
fn paint_row<'a>(
    ui: &Ui,
    rect: Rect,
    row: RowText<'_>,
    current: bool,
    seen: impl Iterator<Item = (State, &'a str)>,
) {
    let painter = ui.painter();
    let text_colour = ui.visuals().text_color();
    if current {
        let running = style::state_colour(State::Running);
        painter.rect_filled(rect, 2.0, running.gamma_multiply(0.25));
        painter.rect_stroke(rect, 2.0, Stroke::new(1.0, running), StrokeKind::Inside);
    }
    painter.text(
        pos2(rect.left() + row.number_width - 6.0, rect.center().y),
        Align2::RIGHT_CENTER,
        row.number.to_string(),
        row.font.clone(),
        ui.visuals().weak_text_color(),
    );
    painter.text(
        pos2(rect.left() + row.number_width, rect.center().y),
        Align2::LEFT_CENTER,
        row.text,
        row.font.clone(),
        text_colour,
    );
    // Tags at the right edge of the visible part of the row.
    let mut right = ui.clip_rect().right().min(rect.right()) - 4.0;
    let tag_font = FontId::proportional(11.0);
    let mut tag = |text: String, colour: Color32| {
        let galley = painter.layout_no_wrap(text, tag_font.clone(), Color32::BLACK);
        let size = galley.size() + Vec2::new(8.0, 0.0);
        let tag_rect =
            Rect::from_min_size(pos2(right - size.x, rect.center().y - size.y / 2.0), size);
        painter.rect_filled(tag_rect, 3.0, colour);
        painter.galley(tag_rect.min + Vec2::new(4.0, 0.0), galley, Color32::BLACK);
        right = tag_rect.left() - 4.0;
    };
    for (state, name) in seen {
        let icon = if state == State::Running {
            "▶"
        } else {
            "⏸"
        };
        tag(format!("{icon} {name}"), style::state_colour(state));
    }
}
