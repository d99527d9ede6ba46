//! The views, one module each. Each draws from the model and the current step, and reports
//! what the user asked for instead of changing the app itself.

pub mod cards;
pub mod console;
pub mod events;
pub mod help;
pub mod page;
pub mod source;
pub mod stacks;
pub mod style;
pub mod timeline;
pub mod toolbar;
pub mod tree;

/// Inside `ScrollArea::show_rows`, scrolls so that row `row` is centred. `first` is the first
/// row of the range being drawn, whose top is the top of `ui`. The scroll area keeps the
/// target within its content, so no row past either end is asked for.
pub fn scroll_to_row(ui: &mut egui::Ui, first: usize, row: usize, row_height: f32) {
    let pitch = row_height + ui.spacing().item_spacing.y;
    let top = ui.max_rect().top() + (row as f32 - first as f32) * pitch;
    let rect = egui::Rect::from_min_size(
        egui::pos2(ui.max_rect().left(), top),
        egui::vec2(1.0, row_height),
    );
    ui.scroll_to_rect(rect, Some(egui::Align::Center));
}
