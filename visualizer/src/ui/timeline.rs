//! The timeline: one lane per greenlet, events left to right, each switch an arrow from the
//! lane it leaves to the lane it enters, labelled with the value; throws and deaths in their
//! own colours. Click or drag to move to an event; the strip on top shows the whole trace.
//!
//! Only the visible events are drawn: the zoom has a floor ([`MIN_PX_PER_EVENT`]) so that a
//! frame draws at most a window's width of events, however long the trace. The overview strip
//! is precomputed when the trace is loaded.

use egui::{
    Align2, Color32, CursorIcon, FontId, Pos2, Rect, Sense, Shape, Stroke, StrokeKind, Ui, Vec2,
    pos2,
};
use greenlet::trace::{EventKind, Outcome, State};

use super::style;
use crate::model::{OVERVIEW_BUCKETS, TraceModel};

/// The closest zoom: pixels per event.
pub const MAX_PX_PER_EVENT: f32 = 140.0;
/// The farthest zoom. It bounds the number of events drawn per frame to the width divided by
/// this.
pub const MIN_PX_PER_EVENT: f32 = 3.0;
const LANE_HEIGHT: f32 = 24.0;
const GUTTER: f32 = 96.0;
const OVERVIEW_HEIGHT: f32 = 14.0;
const AXIS_HEIGHT: f32 = 14.0;

/// Zoom and scroll position of the timeline.
#[derive(Debug, Clone)]
pub struct TimelineView {
    px_per_event: f32,
    /// Event index at the left edge of the lanes (fractional while panning).
    first: f32,
    /// First lane shown (when there are more lanes than room).
    first_lane: usize,
    /// The step the view last moved to show, so it follows the step without fighting the user.
    followed: Option<usize>,
    /// Set on load: pick a zoom that fits the trace once the width is known.
    fit: bool,
}

impl Default for TimelineView {
    fn default() -> Self {
        TimelineView {
            px_per_event: 24.0,
            first: 0.0,
            first_lane: 0,
            followed: None,
            fit: true,
        }
    }
}

/// What happened in the timeline this frame.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TimelineOutput {
    /// The user clicked, dragged or scrubbed to this event.
    pub jump: Option<usize>,
    /// Shapes drawn this frame (bounded by the width, not by the trace).
    pub shapes: usize,
    /// Events drawn this frame.
    pub events_drawn: usize,
}

/// The height that shows every lane of `model` (within reason: more lanes scroll).
pub fn preferred_height(model: &TraceModel) -> f32 {
    let lanes = model.lanes().len().clamp(2, 10) as f32;
    OVERVIEW_HEIGHT + AXIS_HEIGHT + 2.0 + lanes * LANE_HEIGHT + 10.0
}

impl TimelineView {
    /// Starts over for a new trace.
    pub fn reset(&mut self) {
        *self = TimelineView::default();
    }

    /// Pixels per event.
    pub fn zoom(&self) -> f32 {
        self.px_per_event
    }

    /// Draws the timeline around event `step`.
    pub fn show(&mut self, ui: &mut Ui, model: &TraceModel, step: usize) -> TimelineOutput {
        let mut out = TimelineOutput::default();
        let len = model.len();
        let size = ui.available_size();
        let (rect, response) = ui.allocate_exact_size(size, Sense::click_and_drag());
        if len == 0 || rect.width() <= GUTTER + 10.0 {
            return out;
        }
        let lanes_rect = Rect::from_min_max(
            pos2(
                rect.left() + GUTTER,
                rect.top() + OVERVIEW_HEIGHT + AXIS_HEIGHT + 2.0,
            ),
            rect.right_bottom(),
        );
        let width = lanes_rect.width();
        if self.fit {
            self.fit = false;
            self.px_per_event = (width / len as f32).clamp(MIN_PX_PER_EVENT, 48.0);
        }
        let lanes_visible = ((lanes_rect.height() / LANE_HEIGHT).floor() as usize).max(1);
        let lane_count = model.lanes().len();

        // Input: zoom around the pointer, pan, scroll lanes.
        if response.hovered() {
            let (zoom, scroll) = ui.input(|i| (i.zoom_delta(), i.smooth_scroll_delta));
            if zoom != 1.0 {
                let anchor = response
                    .hover_pos()
                    .map_or(width / 2.0, |p| p.x - lanes_rect.left());
                let at = self.first + anchor / self.px_per_event;
                self.px_per_event =
                    (self.px_per_event * zoom).clamp(MIN_PX_PER_EVENT, MAX_PX_PER_EVENT);
                self.first = at - anchor / self.px_per_event;
            }
            let lanes_overflow = lane_count > lanes_visible;
            let pan = if lanes_overflow {
                scroll.x
            } else {
                scroll.x + scroll.y
            };
            self.first -= pan / self.px_per_event;
            if lanes_overflow && scroll.y.abs() > 0.5 {
                let lanes = (-scroll.y / LANE_HEIGHT).round() as isize;
                self.first_lane = self.first_lane.saturating_add_signed(lanes);
            }
        }
        let visible_events = width / self.px_per_event;
        // Follow the step when it moved (keys, playback), keeping it away from the edges.
        if self.followed != Some(step) {
            self.followed = Some(step);
            let s = step as f32;
            if s < self.first + 1.0 || s > self.first + visible_events - 2.0 {
                self.first = s - visible_events * 0.25;
            }
            // With more lanes than room, bring the running greenlet's lane into view.
            if let Some(lane) = model.running_lane(step)
                && (lane < self.first_lane || lane >= self.first_lane + lanes_visible)
            {
                self.first_lane = lane.saturating_sub(lanes_visible / 2);
            }
        }
        self.first = self
            .first
            .clamp(0.0, (len as f32 - visible_events * 0.75).max(0.0));
        self.first_lane = self
            .first_lane
            .min(lane_count.saturating_sub(lanes_visible));

        let x_of = |i: usize| {
            lanes_rect.left()
                + (i as f32 - self.first) * self.px_per_event
                + self.px_per_event / 2.0
        };
        let lane_y = |lane: usize| -> Option<f32> {
            let row = lane.checked_sub(self.first_lane)?;
            (row < lanes_visible)
                .then(|| lanes_rect.top() + row as f32 * LANE_HEIGHT + LANE_HEIGHT / 2.0)
        };
        let first_i = self.first.floor().max(0.0) as usize;
        let last_i = ((self.first + visible_events).ceil() as usize).min(len - 1);

        let painter = ui.painter_at(rect);
        let mut shapes: Vec<Shape> = Vec::new();
        let visuals = ui.visuals().clone();
        let weak = visuals.weak_text_color();
        let font = FontId::proportional(11.0);

        // Lane backgrounds, names (in the colour of their state now) and lifespans.
        let states = model.snapshot(step);
        for lane in self.first_lane..(self.first_lane + lanes_visible).min(lane_count) {
            let info = &model.lanes()[lane];
            let Some(y) = lane_y(lane) else { continue };
            if lane % 2 == 0 {
                shapes.push(Shape::rect_filled(
                    Rect::from_min_max(
                        pos2(rect.left(), y - LANE_HEIGHT / 2.0),
                        pos2(rect.right(), y + LANE_HEIGHT / 2.0),
                    ),
                    0.0,
                    visuals.faint_bg_color,
                ));
            }
            let state = states.iter().find(|s| s.id == info.id).map(|s| s.state);
            let colour = state.map_or(weak, style::state_colour);
            shapes.push(text(
                ui,
                pos2(rect.left() + 4.0, y),
                Align2::LEFT_CENTER,
                style::truncate(&info.label, 13),
                font.clone(),
                colour,
            ));
            let born = x_of(info.first_event).max(lanes_rect.left());
            let gone = x_of(info.dropped_at.unwrap_or(len - 1)).min(lanes_rect.right());
            if born < gone {
                shapes.push(Shape::line_segment(
                    [pos2(born, y), pos2(gone, y)],
                    Stroke::new(1.0, weak.gamma_multiply(0.6)),
                ));
            }
        }

        // Who runs between events: one bar per run of the same greenlet.
        let mut run_start = first_i;
        for i in first_i..=last_i {
            let lane = model.running_lane(i);
            if i == last_i || model.running_lane(i + 1) != lane {
                if let Some(y) = lane.and_then(lane_y) {
                    let left = x_of(run_start).max(lanes_rect.left());
                    let right = (x_of(i) + self.px_per_event).min(lanes_rect.right());
                    shapes.push(Shape::rect_filled(
                        Rect::from_min_max(pos2(left, y - 3.0), pos2(right, y + 3.0)),
                        2.0,
                        style::state_colour(State::Running).gamma_multiply(0.55),
                    ));
                }
                run_start = i + 1;
            }
        }

        // The events themselves.
        let labels = self.px_per_event >= 22.0;
        // A label may run over the next event's slot: switches rarely follow each other.
        let max_chars = ((2.0 * self.px_per_event - 8.0) / 6.0).max(2.0) as usize;
        for i in first_i..=last_i {
            out.events_drawn += 1;
            let Some(event) = model.event(i) else { break };
            let x = x_of(i);
            let lane_of = |id: u64| model.lane_index(id).and_then(lane_y);
            match &event.kind {
                EventKind::Switch {
                    origin,
                    target,
                    value,
                } => transfer(
                    ui,
                    &mut shapes,
                    (x, lane_of(*origin), lane_of(*target)),
                    style::SWITCH,
                    labels.then(|| style::truncate(&crate::model::short_value(value), max_chars)),
                    &lanes_rect,
                ),
                EventKind::Throw {
                    origin,
                    target,
                    payload,
                } => transfer(
                    ui,
                    &mut shapes,
                    (x, lane_of(*origin), lane_of(*target)),
                    style::THROW,
                    labels.then(|| style::truncate(payload, max_chars)),
                    &lanes_rect,
                ),
                EventKind::Spawn { id, .. } => {
                    if let Some(y) = lane_of(*id) {
                        shapes.push(Shape::circle_stroke(
                            pos2(x, y),
                            4.0,
                            Stroke::new(1.5, style::state_colour(State::Unstarted)),
                        ));
                    }
                }
                EventKind::Finish { id, outcome } => {
                    if let Some(y) = lane_of(*id) {
                        let c = pos2(x, y);
                        match outcome {
                            Outcome::Returned { .. } => shapes.push(Shape::rect_filled(
                                Rect::from_center_size(c, Vec2::splat(8.0)),
                                1.0,
                                style::state_colour(State::Dead),
                            )),
                            Outcome::Panicked { .. } | Outcome::Killed => {
                                let colour = if matches!(outcome, Outcome::Killed) {
                                    style::KILL
                                } else {
                                    style::THROW
                                };
                                let s = Stroke::new(2.5, colour);
                                let d = Vec2::splat(5.0);
                                shapes.push(Shape::line_segment([c - d, c + d], s));
                                shapes.push(Shape::line_segment(
                                    [c + Vec2::new(-d.x, d.y), c + Vec2::new(d.x, -d.y)],
                                    s,
                                ));
                            }
                        }
                    }
                }
                EventKind::ParentChanged { id, .. } => {
                    if let Some(y) = lane_of(*id) {
                        let c = pos2(x, y);
                        shapes.push(Shape::convex_polygon(
                            vec![
                                c + Vec2::new(0.0, -5.0),
                                c + Vec2::new(5.0, 0.0),
                                c + Vec2::new(0.0, 5.0),
                                c + Vec2::new(-5.0, 0.0),
                            ],
                            style::CURSOR.gamma_multiply(0.8),
                            Stroke::NONE,
                        ));
                    }
                }
                EventKind::Drop { id } => {
                    if let Some(y) = lane_of(*id) {
                        shapes.push(Shape::line_segment(
                            [pos2(x, y - 6.0), pos2(x, y + 6.0)],
                            Stroke::new(2.0, style::state_colour(State::Dead)),
                        ));
                    }
                }
                EventKind::Marker { .. } => {
                    if let Some(y) = lane_of(event.greenlet) {
                        let top = y - LANE_HEIGHT / 2.0 + 1.0;
                        shapes.push(Shape::convex_polygon(
                            vec![pos2(x - 3.5, top), pos2(x + 3.5, top), pos2(x, top + 6.0)],
                            style::MARKER,
                            Stroke::NONE,
                        ));
                    }
                }
                EventKind::Output { .. } => {
                    if let Some(y) = lane_of(event.greenlet) {
                        shapes.push(Shape::rect_filled(
                            Rect::from_center_size(pos2(x, y + 7.0), Vec2::new(6.0, 4.0)),
                            1.0,
                            style::OUTPUT,
                        ));
                    }
                }
            }
        }

        // Axis ticks: about one label per 80 pixels, at round event numbers.
        let every = nice_step(80.0 / self.px_per_event);
        let axis_y = rect.top() + OVERVIEW_HEIGHT + AXIS_HEIGHT / 2.0 + 1.0;
        let mut tick = first_i.div_ceil(every) * every;
        while tick <= last_i {
            let x = x_of(tick);
            shapes.push(Shape::line_segment(
                [pos2(x, axis_y + 4.0), pos2(x, lanes_rect.top())],
                Stroke::new(1.0, weak),
            ));
            shapes.push(text(
                ui,
                pos2(x, axis_y),
                Align2::CENTER_CENTER,
                tick.to_string(),
                FontId::proportional(10.0),
                weak,
            ));
            tick += every;
        }

        // The current step.
        let cursor_x = x_of(step);
        if (lanes_rect.left()..=lanes_rect.right()).contains(&cursor_x) {
            shapes.push(Shape::rect_filled(
                Rect::from_center_size(
                    pos2(cursor_x, lanes_rect.center().y),
                    Vec2::new(self.px_per_event.max(3.0), lanes_rect.height()),
                ),
                0.0,
                style::CURSOR.gamma_multiply(0.12),
            ));
            shapes.push(Shape::line_segment(
                [
                    pos2(cursor_x, lanes_rect.top()),
                    pos2(cursor_x, lanes_rect.bottom()),
                ],
                Stroke::new(1.5, style::CURSOR),
            ));
        }

        // The overview strip: the whole trace, the part in view, and the step.
        let strip = Rect::from_min_size(
            pos2(lanes_rect.left(), rect.top() + 1.0),
            Vec2::new(width, OVERVIEW_HEIGHT - 2.0),
        );
        overview(&mut shapes, model, strip, &visuals);
        let frac = |i: f32| strip.left() + (i / len as f32).clamp(0.0, 1.0) * strip.width();
        shapes.push(Shape::rect_stroke(
            Rect::from_x_y_ranges(
                frac(self.first)..=frac(self.first + visible_events).max(frac(self.first) + 2.0),
                strip.y_range(),
            ),
            1.0,
            Stroke::new(1.0, visuals.strong_text_color()),
            StrokeKind::Inside,
        ));
        let s = frac(step as f32 + 0.5);
        shapes.push(Shape::line_segment(
            [pos2(s, strip.top()), pos2(s, strip.bottom())],
            Stroke::new(2.0, style::CURSOR),
        ));
        shapes.push(text(
            ui,
            pos2(rect.left() + 4.0, strip.center().y),
            Align2::LEFT_CENTER,
            format!("{len} events"),
            FontId::proportional(10.0),
            weak,
        ));

        // Pointer: hover tells, click and drag move the step; on the strip, over the whole
        // trace.
        if let Some(pointer) = response.interact_pointer_pos().or(response.hover_pos()) {
            let on_strip = pointer.y < strip.bottom() + 2.0 && pointer.x >= strip.left();
            let target = if on_strip {
                Some(((pointer.x - strip.left()) / strip.width() * len as f32) as usize)
            } else if pointer.x >= lanes_rect.left() {
                Some((self.first + (pointer.x - lanes_rect.left()) / self.px_per_event) as usize)
            } else {
                None
            }
            .map(|i| i.min(len - 1));
            if let Some(i) = target {
                if response.clicked() || response.dragged() {
                    out.jump = Some(i);
                    if on_strip {
                        // Scrubbing the strip moves the view with it.
                        self.first = i as f32 - visible_events / 2.0;
                        self.followed = Some(i);
                    } else {
                        self.followed = Some(i);
                    }
                } else if response.hovered() && !on_strip {
                    ui.ctx().set_cursor_icon(CursorIcon::PointingHand);
                    if model.event(i).is_some() {
                        response
                            .clone()
                            .on_hover_text_at_pointer(format!("#{i} {}", model.describe(i)));
                    }
                }
            }
        }
        response.widget_info(|| {
            egui::WidgetInfo::labeled(
                egui::Role::Image,
                true,
                format!(
                    "Timeline, event {step} of {len}, lanes {} to {} of {lane_count}",
                    self.first_lane + 1,
                    (self.first_lane + lanes_visible).min(lane_count)
                ),
            )
        });

        out.shapes = shapes.len();
        painter.extend(shapes);
        out
    }
}

/// An arrow from the origin lane to the target lane at `x`, with the value beside its head.
fn transfer(
    ui: &Ui,
    shapes: &mut Vec<Shape>,
    (x, from, to): (f32, Option<f32>, Option<f32>),
    colour: Color32,
    label: Option<String>,
    lanes: &Rect,
) {
    // A lane out of view: the arrow runs to the edge of the lanes.
    let (from, to) = match (from, to) {
        (None, None) => return,
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (
            f,
            if f < lanes.center().y {
                lanes.bottom()
            } else {
                lanes.top()
            },
        ),
        (None, Some(t)) => (
            if t < lanes.center().y {
                lanes.bottom()
            } else {
                lanes.top()
            },
            t,
        ),
    };
    let stroke = Stroke::new(1.8, colour);
    if (from - to).abs() < 1.0 {
        // A switch to itself: a small loop.
        shapes.push(Shape::circle_stroke(pos2(x, from - 6.0), 5.0, stroke));
    } else {
        let dir = if to > from { 1.0 } else { -1.0 };
        let head = pos2(x, to - dir * 5.0);
        shapes.push(Shape::line_segment([pos2(x, from), head], stroke));
        shapes.push(Shape::convex_polygon(
            vec![
                pos2(x, to - dir * 1.0),
                pos2(x - 4.0, to - dir * 8.0),
                pos2(x + 4.0, to - dir * 8.0),
            ],
            colour,
            Stroke::NONE,
        ));
    }
    if let Some(label) = label {
        let y = (from + to) / 2.0;
        shapes.push(text(
            ui,
            pos2(x + 4.0, y),
            Align2::LEFT_CENTER,
            label,
            FontId::proportional(10.0),
            colour,
        ));
    }
}

/// Density of switches over the whole trace, from the precomputed buckets.
fn overview(shapes: &mut Vec<Shape>, model: &TraceModel, strip: Rect, visuals: &egui::Visuals) {
    shapes.push(Shape::rect_filled(strip, 2.0, visuals.extreme_bg_color));
    let buckets = model.overview();
    let max = buckets.iter().copied().max().unwrap_or(0).max(1) as f32;
    let w = strip.width() / OVERVIEW_BUCKETS as f32;
    for (b, &count) in buckets.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let h = (count as f32 / max).sqrt() * strip.height();
        shapes.push(Shape::rect_filled(
            Rect::from_min_max(
                pos2(strip.left() + b as f32 * w, strip.bottom() - h),
                pos2(strip.left() + (b + 1) as f32 * w, strip.bottom()),
            ),
            0.0,
            style::SWITCH.gamma_multiply(0.35),
        ));
    }
}

/// A text shape.
fn text(ui: &Ui, pos: Pos2, align: Align2, text: String, font: FontId, colour: Color32) -> Shape {
    let galley = ui.painter().layout_no_wrap(text, font, colour);
    let rect = align.anchor_size(pos, galley.size());
    Shape::galley(rect.min, galley, colour)
}

/// The smallest of 1, 2, 5, 10, 20, 50, ... that is at least `at_least`.
fn nice_step(at_least: f32) -> usize {
    let mut step = 1usize;
    loop {
        for m in [1, 2, 5] {
            if (step * m) as f32 >= at_least {
                return step * m;
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_steps_are_round_numbers() {
        assert_eq!(nice_step(0.3), 1);
        assert_eq!(nice_step(3.0), 5);
        assert_eq!(nice_step(7.0), 10);
        assert_eq!(nice_step(26.6), 50);
    }
}
