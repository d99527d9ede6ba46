//! Stack bars: each greenlet's stack drawn to one common scale, with its guard page, the bytes
//! in use, the high-water mark and the real addresses; below, the frames of suspended
//! greenlets.

use egui::{
    Align2, FontId, Rect, RichText, Role, Sense, Stroke, StrokeKind, Ui, Vec2, WidgetInfo, pos2,
};
use greenlet::trace::{GreenletState, State};

use super::style;
use crate::model::TraceModel;

const BAR_WIDTH: f32 = 30.0;
/// Narrowest and widest a column gets; within that, columns share the width evenly.
const COLUMN_WIDTH: std::ops::RangeInclusive<f32> = 140.0..=190.0;
/// The guard page is tiny next to a stack; it gets at least this many pixels to be seen.
const MIN_GUARD_PX: f32 = 5.0;
/// Frames listed under a bar before "… N more".
const MAX_FRAMES: usize = 6;

/// At most this many stacks side by side (the running greenlet's always among them).
pub const MAX_STACKS: usize = 8;

/// Draws the stacks of the greenlets alive after event `step`, side by side; returns how many.
pub fn show(ui: &mut Ui, model: &TraceModel, step: usize) -> usize {
    // The dead have no stack left: they get one line, not a column.
    let (shown, hidden) = model.shown(step, MAX_STACKS);
    let (dead, states): (Vec<_>, Vec<_>) = shown
        .into_iter()
        .partition(|s| s.state == State::Dead && s.stack.is_none());
    if hidden > 0 {
        ui.small(format!("{hidden} more greenlets' stacks not drawn"));
    }
    if !dead.is_empty() {
        let names: Vec<&str> = dead.iter().map(|s| model.label(s.id)).collect();
        ui.small(format!("dead, stacks released: {}", names.join(", ")));
    }
    let bar_height = (ui.available_height() - 24.0).clamp(60.0, 320.0);
    // A separator and its spacing take about this much between two columns.
    let separators = 14.0 * states.len().saturating_sub(1) as f32;
    let width = ((ui.available_width() - separators) / states.len().max(1) as f32)
        .clamp(*COLUMN_WIDTH.start(), *COLUMN_WIDTH.end());
    egui::ScrollArea::horizontal()
        .id_salt("stacks")
        .auto_shrink([false, true])
        .show(ui, |ui| {
            ui.horizontal_top(|ui| {
                for (i, s) in states.iter().enumerate() {
                    if i > 0 {
                        ui.separator();
                    }
                    ui.vertical(|ui| {
                        ui.set_width(width);
                        column(ui, model, s, bar_height);
                    });
                }
            });
        });
    states.len()
}

/// One greenlet's column: its name, then the bar beside its numbers and frames.
fn column(ui: &mut Ui, model: &TraceModel, s: &GreenletState, bar_height: f32) {
    let name = model.label(s.id);
    ui.label(
        RichText::new(style::truncate(name, 18))
            .strong()
            .color(style::state_colour(s.state)),
    );
    ui.horizontal_top(|ui| {
        if s.stack.is_some() {
            bar(ui, model, s, bar_height);
        }
        ui.vertical(|ui| {
            ui.spacing_mut().item_spacing.y = 1.0;
            numbers(ui, model, s);
            frames(ui, model, s);
        });
    });
}

/// Size, use, high-water mark and addresses, or why there is no bar.
fn numbers(ui: &mut Ui, model: &TraceModel, s: &GreenletState) {
    let Some(stack) = s.stack else {
        let root = model.lane(s.id).is_some_and(|l| l.root);
        ui.small(if root {
            "runs on the thread's own stack"
        } else {
            "no stack"
        });
        return;
    };
    ui.small(format!("size {}", style::bytes(stack.len())));
    ui.small(
        RichText::new(format!("in use {}", style::bytes(s.stack_used)))
            .color(style::state_colour(s.state)),
    );
    ui.small(
        RichText::new(format!("peak {}", style::bytes(s.stack_high_water)))
            .color(style::HIGH_WATER),
    );
    if let Some(sp) = s.sp {
        ui.small(RichText::new(format!("sp   {}", style::hex(sp))).monospace());
    }
    ui.small(RichText::new(format!("top  {}", style::hex(stack.end))).monospace());
    ui.small(RichText::new(format!("base {}", style::hex(stack.start))).monospace());
    if let Some(span) = magnified_span(stack.len(), s.stack_high_water.max(s.stack_used)) {
        ui.small(RichText::new(format!("thin bar: top {}", style::bytes(span))).weak())
            .on_hover_text("The thin bar magnifies the top of the stack, where the use is");
    }
    if let Some(guard) = s.guard {
        ui.small(
            RichText::new(format!("guard {} below", style::bytes(guard.len()))).color(style::GUARD),
        )
        .on_hover_text(format!(
            "guard page {}..{}: touching it is a stack overflow",
            style::hex(guard.start),
            style::hex(guard.end)
        ));
    }
}

/// The bar: guard page at the bottom, the stack above it, filled from the top (stacks grow
/// down) as far as in use, with a line at the high-water mark.
fn bar(ui: &mut Ui, model: &TraceModel, s: &GreenletState, bar_height: f32) {
    let (Some(stack), guard) = (s.stack, s.guard) else {
        return;
    };
    let guard_len = guard.map_or(0, |g| g.len());
    // One scale for every bar: the largest stack (plus a guard page) fills the height.
    let largest = (model.largest_stack().max(stack.len()) + guard_len).max(1) as f32;
    let scale = bar_height / largest;
    let stack_px = (stack.len() as f32 * scale).max(20.0);
    let guard_px = if guard.is_some() {
        (guard_len as f32 * scale).max(MIN_GUARD_PX)
    } else {
        0.0
    };
    let zoom = magnified_span(stack.len(), s.stack_high_water.max(s.stack_used));
    let width = BAR_WIDTH + zoom.map_or(0.0, |_| ZOOM_GAP + ZOOM_WIDTH);
    let (rect, response) = ui.allocate_exact_size(Vec2::new(width, bar_height), Sense::hover());
    let painter = ui.painter_at(rect.expand(1.0));
    let stack_rect = Rect::from_min_size(rect.min, Vec2::new(BAR_WIDTH, stack_px));
    let guard_rect = Rect::from_min_size(stack_rect.left_bottom(), Vec2::new(BAR_WIDTH, guard_px));
    let colour = style::state_colour(s.state);
    let px = |bytes: u64| (bytes as f32 / stack.len().max(1) as f32 * stack_px).min(stack_px);
    painter.rect_filled(stack_rect, 0.0, ui.visuals().extreme_bg_color);
    let used = Rect::from_min_size(
        stack_rect.min,
        Vec2::new(
            BAR_WIDTH,
            px(s.stack_used).max(if s.stack_used > 0 { 1.0 } else { 0.0 }),
        ),
    );
    painter.rect_filled(used, 0.0, colour.gamma_multiply(0.8));
    painter.rect_stroke(
        stack_rect,
        0.0,
        Stroke::new(1.0, ui.visuals().weak_text_color()),
        StrokeKind::Inside,
    );
    if guard_px > 0.0 {
        painter.rect_filled(guard_rect, 0.0, style::GUARD);
        // Hatching says "no access".
        let mut x = guard_rect.left() - guard_rect.height();
        while x < guard_rect.right() {
            painter.line_segment(
                [
                    pos2(x, guard_rect.bottom()),
                    pos2(x + guard_rect.height(), guard_rect.top()),
                ],
                Stroke::new(1.0, ui.visuals().extreme_bg_color),
            );
            x += 5.0;
        }
    }
    if s.stack_high_water > 0 {
        let y = stack_rect.top() + px(s.stack_high_water);
        painter.line_segment(
            [
                pos2(stack_rect.left() - 3.0, y),
                pos2(stack_rect.right() + 3.0, y),
            ],
            Stroke::new(2.0, style::HIGH_WATER),
        );
    }
    let label = format!(
        "{} stack: {} in use of {}, high-water mark {}",
        model.label(s.id),
        style::bytes(s.stack_used),
        style::bytes(stack.len()),
        style::bytes(s.stack_high_water)
    );
    response.widget_info(|| WidgetInfo::labeled(Role::Image, true, &label));
    response.on_hover_ui(|ui| {
        ui.label(&label);
        ui.monospace(format!(
            "stack {}..{}",
            style::hex(stack.start),
            style::hex(stack.end)
        ));
        if let Some(g) = guard {
            ui.monospace(format!(
                "guard {}..{}",
                style::hex(g.start),
                style::hex(g.end)
            ));
        }
        ui.weak("Drawn to scale with every other stack (the guard page at least 5 px).");
        if let Some(span) = zoom {
            ui.weak(format!(
                "The thin bar beside it magnifies the top {} of the stack.",
                style::bytes(span)
            ));
        }
    });
    if let Some(span) = zoom {
        let zoom_rect = Rect::from_min_size(
            pos2(stack_rect.right() + ZOOM_GAP, stack_rect.top()),
            Vec2::new(ZOOM_WIDTH, stack_px),
        );
        magnified(&painter, ui, zoom_rect, span, s, colour);
        // The zoomed span, marked on the bar it magnifies.
        painter.line_segment(
            [
                pos2(stack_rect.right(), stack_rect.top() + px(span)),
                pos2(zoom_rect.left(), zoom_rect.bottom()),
            ],
            Stroke::new(1.0, ui.visuals().weak_text_color()),
        );
    }
    // Percent in the bar, readable at a glance.
    if stack_px > 30.0 {
        let pct = s.stack_used as f32 * 100.0 / stack.len().max(1) as f32;
        painter.text(
            pos2(stack_rect.center().x, stack_rect.bottom() - 8.0),
            Align2::CENTER_CENTER,
            format!("{pct:.0}%"),
            FontId::proportional(10.0),
            ui.visuals().text_color(),
        );
    }
}

/// Width of the magnifying bar, and its gap from the bar.
const ZOOM_WIDTH: f32 = 12.0;
const ZOOM_GAP: f32 = 4.0;

/// How many bytes from the top of a stack of `size` bytes a magnifying bar should show, when
/// the `peak` use would otherwise be a sliver of the bar: a power of two at least twice the
/// peak (at least 4 KiB). `None` when the use is visible at full scale.
pub fn magnified_span(size: u64, peak: u64) -> Option<u64> {
    if peak.saturating_mul(8) >= size {
        return None;
    }
    let span = peak.saturating_mul(2).max(4096).next_power_of_two();
    (span < size).then_some(span)
}

/// The top `span` bytes of the stack, stretched over the bar's height: use and peak.
fn magnified(
    painter: &egui::Painter,
    ui: &Ui,
    rect: Rect,
    span: u64,
    s: &GreenletState,
    colour: egui::Color32,
) {
    let px = |bytes: u64| (bytes as f32 / span as f32 * rect.height()).min(rect.height());
    painter.rect_filled(rect, 0.0, ui.visuals().extreme_bg_color);
    painter.rect_filled(
        Rect::from_min_size(rect.min, Vec2::new(rect.width(), px(s.stack_used))),
        0.0,
        colour.gamma_multiply(0.8),
    );
    if s.stack_high_water > 0 {
        let y = rect.top() + px(s.stack_high_water);
        painter.line_segment(
            [pos2(rect.left() - 2.0, y), pos2(rect.right() + 2.0, y)],
            Stroke::new(2.0, style::HIGH_WATER),
        );
    }
    painter.rect_stroke(
        rect,
        0.0,
        Stroke::new(1.0, ui.visuals().weak_text_color()),
        StrokeKind::Inside,
    );
}

/// The frames of a suspended greenlet (or of the running one at a marker), innermost first,
/// without engine and runtime plumbing.
fn frames(ui: &mut Ui, model: &TraceModel, s: &GreenletState) {
    let Some(all) = s
        .frames
        .and_then(|i| model.trace().backtraces.get(i as usize))
    else {
        return;
    };
    let frames = crate::frames::program_frames(all);
    ui.add_space(2.0);
    if frames.is_empty() {
        ui.small(RichText::new("no frames of the program's own").weak())
            .on_hover_text(format!(
                "{} engine and runtime frames are hidden",
                all.len()
            ));
        return;
    }
    ui.small(RichText::new("frames, innermost first:").weak())
        .on_hover_text(format!(
            "{} of {} frames are the program's; engine and runtime frames are hidden",
            frames.len(),
            all.len()
        ));
    for f in frames.iter().take(MAX_FRAMES) {
        let name = crate::frames::display_name(f);
        let response = ui.small(RichText::new(style::truncate(&name, 26)).monospace());
        response.on_hover_ui(|ui| {
            ui.monospace(&f.function);
            if let (Some(file), Some(line)) = (&f.file, f.line) {
                ui.monospace(format!("{file}:{line}"));
            }
        });
    }
    if frames.len() > MAX_FRAMES {
        ui.small(format!("… {} more", frames.len() - MAX_FRAMES))
            .on_hover_ui(|ui| {
                for f in &frames[MAX_FRAMES..] {
                    ui.monospace(crate::frames::display_name(f));
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_use_of_a_big_stack_is_magnified() {
        // 5 KiB of 1 MiB: the top 16 KiB are shown magnified.
        assert_eq!(magnified_span(1 << 20, 5 * 1024), Some(16 * 1024));
        assert_eq!(magnified_span(1 << 20, 0), Some(4096));
        // A third of the stack is visible as it is.
        assert_eq!(magnified_span(256 * 1024, 100 * 1024), None);
        // Never a span as big as the stack.
        assert_eq!(magnified_span(16 * 1024, 1024), Some(4096));
        assert_eq!(magnified_span(4096, 100), None);
    }
}
