//! Greenlet cards: one per live greenlet with its name, id, state, parent and last value.

use egui::{Color32, Frame, RichText, Stroke, Ui, Vec2};
use greenlet::trace::{GreenletState, State};

use super::style;
use crate::model::TraceModel;

/// Width of a card.
const CARD_WIDTH: f32 = 142.0;

/// Draws the cards of every greenlet alive after event `step`, wrapping into rows.
pub fn show(ui: &mut Ui, model: &TraceModel, step: usize) {
    let states = model.snapshot(step);
    if states.is_empty() {
        ui.weak("No greenlets at this step.");
        return;
    }
    ui.horizontal_wrapped(|ui| {
        ui.spacing_mut().item_spacing = Vec2::new(6.0, 6.0);
        for s in states {
            card(ui, model, s);
        }
    });
}

/// One card, with the details in its tooltip.
fn card(ui: &mut Ui, model: &TraceModel, s: &GreenletState) {
    let colour = style::state_colour(s.state);
    let running = s.state == State::Running;
    let frame = Frame::group(ui.style())
        .stroke(Stroke::new(if running { 2.5 } else { 1.0 }, colour))
        .fill(colour.gamma_multiply(if running { 0.18 } else { 0.07 }))
        .inner_margin(6.0);
    let name = model.label(s.id);
    let response = frame
        .show(ui, |ui| {
            ui.set_width(CARD_WIDTH);
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
    let value = s.last_value.as_deref().unwrap_or("—");
    ui.small(format!("last value: {}", style::truncate(value, 14)));
}
