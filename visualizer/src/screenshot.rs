//! `--screenshot`: one frame rendered to a PNG without a window or a display.
//!
//! The frame is drawn by the same [`App::show`] as the window, in an `egui_kittest` harness,
//! and rendered by wgpu on whatever adapter exists; on a machine without a GPU that is Mesa's
//! CPU Vulkan driver (lavapipe), so no X server is needed.

use std::path::Path;

use egui_kittest::Harness;

use crate::App;

/// Frames run at most before the picture is taken (animations take a few).
const MAX_FRAMES: u64 = 24;

/// Renders `app` at `size` (logical pixels, scale 1) and writes the PNG to `path`.
///
/// # Errors
/// A message when no wgpu adapter can render or the file cannot be written.
pub fn capture(app: App, size: [u32; 2], path: &Path) -> Result<(), String> {
    let mut harness = render_harness(app, size);
    let image = harness.render()?;
    image
        .save(path)
        .map_err(|e| format!("could not write {}: {e}", path.display()))
}

/// A harness showing `app` at `size`, settled (animations done), ready to render.
pub fn render_harness(app: App, size: [u32; 2]) -> Harness<'static, App> {
    let mut harness = Harness::builder()
        .with_size([size[0] as f32, size[1] as f32])
        .with_max_steps(MAX_FRAMES)
        .with_accessibility_check(false)
        .with_render_cursor(false)
        .with_context_setup(crate::ui::style::configure)
        // Trace files may hold text the bundled fonts lack: draw it as boxes, not panic.
        .allow_missing_glyphs()
        .wgpu()
        // As eframe runs it: the app's `ui` gets the whole window, without the margin that
        // kittest puts around plain ui closures.
        .build_eframe(|_cc| app);
    harness.run_ok();
    harness
}
