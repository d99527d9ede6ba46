//! Greenlet cards: one per live greenlet with its name, id, state, parent and last value.

use egui::{Color32, Frame, RichText, Stroke, Ui, Vec2};
use greenlet::trace::{GreenletState, State};

use super::style;
use crate::model::TraceModel;

/// Widest and narrowest a card gets; within that, cards share the width evenly.
const CARD_WIDTH: std::ops::RangeInclusive<f32> = 112.0..=150.0;
/// Frame margin and stroke around a card's contents, on each side.
const CARD_MARGIN: f32 = 8.0;
const GAP: f32 = 6.0;

/// At most this many cards (the running greenlet's always among them).
pub const MAX_CARDS: usize = 16;

/// Draws the cards of the greenlets alive after event `step`, in rows; returns how many.
pub fn show(ui: &mut Ui, model: &TraceModel, step: usize) -> usize {
    let (states, hidden) = model.shown(step, MAX_CARDS);
    if states.is_empty() {
        ui.weak("No greenlets at this step.");
        return 0;
    }
    let count = states.len();
    // Rows of equal cards, laid out here: a frame's size is known only after it is drawn, so
    // `horizontal_wrapped` cannot wrap frames before they overflow.
    let available = ui.available_width();
    let slot = |n: usize| (available - GAP * (n as f32 - 1.0)) / n as f32 - 2.0 * CARD_MARGIN;
    let per_row = (1..=states.len())
        .rev()
        .find(|&n| slot(n) >= *CARD_WIDTH.start())
        .unwrap_or(1);
    let width = slot(per_row).clamp(*CARD_WIDTH.start(), *CARD_WIDTH.end());
    ui.spacing_mut().item_spacing = Vec2::new(GAP, GAP);
    for row in states.chunks(per_row) {
        ui.horizontal_top(|ui| {
            for s in row {
                card(ui, model, s, width);
            }
        });
    }
    if hidden > 0 {
        ui.weak(format!(
            "… and {hidden} more greenlets alive (see the timeline)"
        ));
    }
    count
}

/// One card, with the details in its tooltip.
fn card(ui: &mut Ui, model: &TraceModel, s: &GreenletState, width: f32) {
    let colour = style::state_colour(s.state);
    let running = s.state == State::Running;
    let frame = Frame::group(ui.style())
        .stroke(Stroke::new(if running { 2.5 } else { 1.0 }, colour))
        .fill(colour.gamma_multiply(if running { 0.18 } else { 0.07 }))
        .inner_margin(CARD_MARGIN - 2.0);
    let name = model.label(s.id);
    let response = frame
        .show(ui, |ui| {
            ui.set_width(width);
            // The cards sit in a wrapping row; the inside of each is a column.
            ui.vertical(|ui| card_body(ui, model, s, colour));
        })
        .response;
    response.on_hover_ui(|ui| {
        ui.strong(format!("{name} (#{})", s.id));
        ui.label(format!("state: {}", style::state_name(s.state)));
        if let Some(v) = &s.last_value {
            ui.label(format!("last value received: {v}"));
        }
        if let Some(lane) = model.lane(s.id)
            && !lane.root
        {
            ui.label(format!("stack: {}", style::bytes(lane.stack_size)));
        }
    });
}

/// What a card says: name and id, state, parent, last value.
fn card_body(ui: &mut Ui, model: &TraceModel, s: &GreenletState, colour: Color32) {
    ui.spacing_mut().item_spacing.y = 1.0;
    ui.horizontal(|ui| {
        ui.label(RichText::new(style::truncate(model.label(s.id), 14)).strong());
        ui.weak(format!("#{}", s.id));
    });
    ui.label(RichText::new(format!("● {}", style::state_name(s.state))).color(colour));
    let parent = s
        .parent
        .map_or("none (root)".to_owned(), |p| model.label(p).to_owned());
    ui.small(format!("parent: {}", style::truncate(&parent, 14)));
    let value = s
        .last_value
        .as_deref()
        .map_or("—".to_owned(), crate::model::short_value);
    ui.small(format!("last value: {}", style::truncate(&value, 14)));
}
