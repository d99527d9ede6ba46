//! The native window (eframe, rendering with wgpu), and a picture of it for checks.
//!
//! `--window-screenshot` opens the real window, lets it settle, saves what the window
//! rendered to a PNG and closes it: unlike `--screenshot` (headless, see
//! [`crate::screenshot`]) it goes through the windowing system and the window's own surface,
//! so CI runs it under Xvfb to check the native path end to end.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::App;

/// Frames drawn before the picture is taken: enough for layout and animations to settle.
const SETTLE_FRAMES: u32 = 12;
/// Frames after which a picture that never arrived counts as a failure.
const GIVE_UP_FRAMES: u32 = 600;

/// How a requested picture of the window turned out.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Capture {
    /// Not asked for yet.
    Waiting,
    /// Asked for, not delivered yet.
    Requested,
    /// Saved, or why not.
    Done(Result<(), String>),
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// The app in its window, with the optional picture-taking.
struct Window {
    app: App,
    capture: Option<(PathBuf, Arc<Mutex<Capture>>)>,
    frames: u32,
}

impl eframe::App for Window {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.app.show(ui);
        let Some((path, state)) = &self.capture else {
            return;
        };
        let ctx = ui.ctx().clone();
        self.frames += 1;
        ctx.request_repaint();
        let now = state.lock().map(|s| s.clone()).unwrap_or(Capture::Waiting);
        match now {
            Capture::Waiting if self.frames >= SETTLE_FRAMES => {
                set(state, Capture::Requested);
                let (path, state, repaint) = (path.clone(), state.clone(), ctx.clone());
                ctx.send_viewport_cmd(egui::ViewportCommand::Screenshot(
                    egui::ScreenshotCallback::new(move |image| {
                        set(&state, Capture::Done(save(&image, &path)));
                        repaint.request_repaint();
                    }),
                ));
            }
            Capture::Done(_) => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
            _ if self.frames > GIVE_UP_FRAMES => {
                set(
                    state,
                    Capture::Done(Err(format!(
                        "no picture of the window after {GIVE_UP_FRAMES} frames"
                    ))),
                );
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
            _ => {}
        }
    }
}

/// Records the capture's progress.
fn set(state: &Mutex<Capture>, to: Capture) {
    if let Ok(mut s) = state.lock() {
        *s = to;
    }
}

/// Writes the window's pixels as a PNG.
fn save(image: &egui::ColorImage, path: &std::path::Path) -> Result<(), String> {
    let [w, h] = image.size;
    let bytes: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
    let png = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| "the window's picture has the wrong number of pixels".to_owned())?;
    png.save(path)
        .map_err(|e| format!("could not write {}: {e}", path.display()))
}

/// Opens a window of `size` logical pixels and runs `app` until the window is closed. With
/// `capture`, saves a picture of the window there once it has settled, then closes it.
///
/// # Errors
/// When no window can be opened (no display, no usable graphics driver), or the picture could
/// not be taken or saved.
pub fn run(app: App, size: [u32; 2], capture: Option<PathBuf>) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("greenlet visualizer")
            .with_inner_size([size[0] as f32, size[1] as f32])
            .with_min_inner_size([900.0, 560.0])
            .with_drag_and_drop(true),
        ..Default::default()
    };
    let state = Arc::new(Mutex::new(Capture::Waiting));
    let window = Window {
        app,
        capture: capture.map(|path| (path, state.clone())),
        frames: 0,
    };
    let capturing = window.capture.is_some();
    eframe::run_native(
        "greenlet visualizer",
        options,
        Box::new(|cc| {
            crate::ui::style::configure(&cc.egui_ctx);
            Ok(Box::new(window))
        }),
    )
    .map_err(|e| format!("could not open the window: {e}"))?;
    if !capturing {
        return Ok(());
    }
    match state.lock().map(|s| s.clone()) {
        Ok(Capture::Done(result)) => result,
        _ => Err("the window closed before its picture was taken".to_owned()),
    }
}
