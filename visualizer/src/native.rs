//! The native window (eframe, rendering with wgpu).

use crate::App;

/// The window's first size: the layout is made for 1280×720 and up.
pub const WINDOW_SIZE: [f32; 2] = [1280.0, 760.0];

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// Opens the window and runs `app` until the window is closed.
///
/// # Errors
/// When no window can be opened (no display, no usable graphics driver).
pub fn run(app: App) -> eframe::Result {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("greenlet visualizer")
            .with_inner_size(WINDOW_SIZE)
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    eframe::run_native(
        "greenlet visualizer",
        options,
        Box::new(|cc| {
            crate::ui::style::configure(&cc.egui_ctx);
            Ok(Box::new(app))
        }),
    )
}
