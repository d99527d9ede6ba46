//! The web page's side of the visualizer (wasm32 only): the same [`App`] in eframe's
//! `WebRunner`, plus what a browser does differently.
//!
//! - Lessons cannot be recorded here (no native greenlets): the page's loader fetches the
//!   traces the native engine recorded at build time (`lessons/<id>.json`, written by
//!   `cargo xtask web`) and hands them over with [`add_lesson`] before [`start`].
//! - Files come from JavaScript (file picker, `?trace=<url>`) through [`open_trace`], or are
//!   dropped on the canvas (eframe delivers their bytes, not a path).
//! - [`state`] is a read-only view of the app for browser tests, as JSON.

pub mod trace;

use std::cell::RefCell;
use std::collections::HashMap;

use wasm_bindgen::prelude::*;

use crate::{App, lessons};

thread_local! {
    /// Recorded lesson traces (JSON), by lesson id, as the page delivered them.
    static LESSONS: RefCell<HashMap<String, String>> = RefCell::new(HashMap::new());
    /// Trace files the page opened, waiting for the next frame: (name, bytes).
    static INBOX: RefCell<Vec<(String, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    /// What the last frame showed, as JSON (see [`state`]).
    static STATE: RefCell<String> = const { RefCell::new(String::new()) };
    /// The running app's context, to wake it when JavaScript hands over a file.
    static CONTEXT: RefCell<Option<egui::Context>> = const { RefCell::new(None) };
}

/// The lesson ids, in teaching order: the traces the loader must fetch.
#[wasm_bindgen]
pub fn lesson_ids() -> Vec<String> {
    lessons::ALL.iter().map(|l| l.id.to_owned()).collect()
}

/// Hands over the recorded trace of a lesson (the JSON the native build exported).
#[wasm_bindgen]
pub fn add_lesson(id: &str, json: String) {
    LESSONS.with(|l| l.borrow_mut().insert(id.to_owned(), json));
}

/// Opens a trace file's contents, as if dropped on the page (shown at the next frame).
#[wasm_bindgen]
pub fn open_trace(name: &str, bytes: &[u8]) {
    INBOX.with(|i| i.borrow_mut().push((name.to_owned(), bytes.to_vec())));
    CONTEXT.with(|c| {
        if let Some(ctx) = c.borrow().as_ref() {
            ctx.request_repaint();
        }
    });
}

/// What the app shows, as JSON: `step`, `event_count`, `running`, `source_file`,
/// `source_line`, `lesson`, `program`, `playing`, `error`, `help_open`, and `frames` (frames
/// drawn so far) and `first_frame_ms` (when the first frame was drawn, in milliseconds since
/// the page started loading). Read-only: tests drive the page with real input events.
#[wasm_bindgen]
pub fn state() -> String {
    STATE.with(|s| s.borrow().clone())
}

/// The trace of a lesson, from what the page delivered (see [`add_lesson`]).
pub(crate) fn lesson_trace(id: &str) -> Result<trace::Trace, String> {
    LESSONS.with(|l| match l.borrow().get(id) {
        Some(json) => trace::Trace::from_json(json)
            .map_err(|e| format!("the recorded trace of lesson {id} cannot be read: {e}")),
        None => Err(format!(
            "the page did not deliver the recorded trace of lesson {id}"
        )),
    })
}

/// Starts the visualizer on `canvas`, showing lesson `lesson` (the first lesson when absent,
/// as the desktop does) unless a trace was opened with [`open_trace`] first. `zoom` scales
/// the whole interface (a projector seen from the back of a room), on top of the browser's
/// own zoom.
///
/// # Errors
/// When the canvas has no WebGL2 (or WebGL1) context, or the app could not start.
#[wasm_bindgen]
pub async fn start(
    canvas: web_sys::HtmlCanvasElement,
    lesson: Option<String>,
    zoom: Option<f32>,
) -> Result<(), JsValue> {
    let mut app = App::new();
    let opened_file = INBOX.with(|i| !i.borrow().is_empty());
    if !opened_file {
        app.load_lesson(lesson.as_deref().unwrap_or(lessons::ALL[0].id));
    }
    let page = Page {
        app,
        frames: 0,
        first_frame_ms: None,
    };
    eframe::WebRunner::new()
        .start(
            canvas,
            eframe::WebOptions::default(),
            Box::new(move |cc| {
                crate::ui::style::configure(&cc.egui_ctx);
                // The browser's colour scheme would otherwise choose: the page looks the same
                // on every machine, like the desktop's pictures (and screenshots compare).
                cc.egui_ctx.set_theme(egui::Theme::Dark);
                if let Some(zoom) = zoom.filter(|z| (0.5..=4.0).contains(z)) {
                    // Set directly, not with `set_zoom_factor` (which applies after the
                    // first frame): the first frame would lay the panels out unzoomed and
                    // they would keep those widths.
                    cc.egui_ctx.options_mut(|o| o.zoom_factor = zoom);
                }
                CONTEXT.with(|c| *c.borrow_mut() = Some(cc.egui_ctx.clone()));
                Ok(Box::new(page))
            }),
        )
        .await
}

/// The app on the page, with what only the page does.
struct Page {
    app: App,
    frames: u64,
    first_frame_ms: Option<f64>,
}

impl eframe::App for Page {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.take_files(&ctx);
        // The browser's own file picker opens only from page script; the app's Ctrl+O would
        // just say so. Consumed here, so the app never sees it.
        if ctx.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::O)) {
            call_page("greenletVizPickFile");
        }
        self.app.show(ui);
        self.frames += 1;
        if self.first_frame_ms.is_none() {
            self.first_frame_ms = now_ms();
        }
        let json = self.state_json();
        STATE.with(|s| *s.borrow_mut() = json);
    }
}

impl Page {
    /// Opens what JavaScript handed over. Files dropped on the canvas are taken out of the
    /// input (the app's own drop handling wants a path, which the web does not have) and read
    /// asynchronously, the only way a browser reads files; they arrive through the same inbox.
    fn take_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input_mut(|i| std::mem::take(&mut i.raw.dropped_files));
        for file in dropped {
            wasm_bindgen_futures::spawn_local(async move {
                let name = file.path().display().to_string();
                match file.bytes_async().await {
                    Ok(bytes) => open_trace(&name, &bytes),
                    // Shown by the app like any unreadable file.
                    Err(e) => open_trace(&name, format!("unreadable: {e}").as_bytes()),
                }
            });
        }
        let files = INBOX.with(|i| std::mem::take(&mut *i.borrow_mut()));
        // The last one wins, as when several files are opened one after another.
        if let Some((name, bytes)) = files.into_iter().last() {
            self.app.load_bytes(&name, &bytes);
        }
    }

    fn state_json(&self) -> String {
        let s = self.app.view_state();
        serde_json::json!({
            "step": s.step,
            "event_count": s.event_count,
            "running": s.running,
            "source_file": s.source_file,
            "source_line": s.source_line,
            "lesson": s.lesson,
            "program": s.program,
            "playing": s.playing,
            "error": s.error,
            "help_open": s.help_open,
            "frames": self.frames,
            "first_frame_ms": self.first_frame_ms,
        })
        .to_string()
    }
}

/// Milliseconds since the page started loading.
fn now_ms() -> Option<f64> {
    Some(web_sys::window()?.performance()?.now())
}

/// Calls the page's global function `name` with no arguments, if the page defines it.
fn call_page(name: &str) {
    let Some(window) = web_sys::window() else {
        return;
    };
    if let Ok(f) = js_sys::Reflect::get(&window, &JsValue::from_str(name))
        && let Ok(f) = f.dyn_into::<js_sys::Function>()
    {
        let _ = f.call0(&window);
    }
}
