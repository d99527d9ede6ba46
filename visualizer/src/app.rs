//! The application: what is loaded, where the viewer is, and the frame that shows it all.
//!
//! Nothing here depends on the native window: [`App::show`] draws into any [`egui::Ui`], so the
//! same app runs in eframe's window, in `egui_kittest` tests and screenshots, and (later) in the
//! web page.

use egui::{Context, Ui};
use greenlet::trace::Trace;

use crate::action::Action;
use crate::lessons;
use crate::model::TraceModel;
use crate::playback::Playback;
use crate::ui::{
    cards, console, events::EventList, help, page, source::SourceView, stacks,
    timeline::TimelineView, toolbar, tree,
};

/// Where the loaded trace came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A bundled lesson, by id.
    Lesson(&'static str),
    /// A file (its path or name).
    File(String),
    /// Built in memory (tests, `--synthetic`).
    Memory(String),
}

/// A loaded trace.
#[derive(Debug)]
struct Document {
    model: TraceModel,
    origin: Origin,
}

/// What the app shows, for tests and for scripts driving it (the web page's JavaScript hook).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ViewState {
    /// The loaded program's name.
    pub program: Option<String>,
    /// The lesson's id, if a lesson is loaded.
    pub lesson: Option<&'static str>,
    /// The current event index.
    pub step: usize,
    /// Number of events.
    pub event_count: usize,
    /// Whether playback runs.
    pub playing: bool,
    /// Playback speed, in events per second.
    pub speed: f32,
    /// The name of the greenlet running after the current event.
    pub running: Option<String>,
    /// The file of the current source line.
    pub source_file: Option<String>,
    /// The current source line (from the last marker reached).
    pub source_line: Option<u32>,
    /// The error shown, if any.
    pub error: Option<String>,
    /// Whether the help overlay is open.
    pub help_open: bool,
}

/// How much the last frame drew: the views draw only what is visible, and the large-trace
/// tests check these stay bounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameStats {
    /// Shapes the timeline emitted.
    pub timeline_shapes: usize,
    /// Events the timeline drew.
    pub timeline_events: usize,
    /// Rows of the event list drawn.
    pub event_rows: usize,
    /// Console lines drawn.
    pub console_rows: usize,
    /// Source lines drawn.
    pub source_rows: usize,
    /// Greenlet cards drawn.
    pub cards: usize,
    /// Parent tree nodes drawn.
    pub tree_nodes: usize,
    /// Stack columns drawn.
    pub stacks: usize,
}

/// The visualizer.
#[derive(Debug)]
pub struct App {
    doc: Option<Document>,
    playback: Playback,
    error: Option<String>,
    help_open: bool,
    /// The "open path" field's text, while it is shown.
    open_path: Option<String>,
    /// The path field was just shown: give it the keyboard once.
    focus_open_path: bool,
    source: SourceView,
    events: EventList,
    timeline: TimelineView,
    stats: FrameStats,
    /// Set when the window title should change.
    title_dirty: bool,
}

impl Default for App {
    fn default() -> Self {
        App::new()
    }
}

impl App {
    /// An app with nothing loaded: it shows the lessons to choose from.
    pub fn new() -> App {
        App {
            doc: None,
            playback: Playback::new(0),
            error: None,
            help_open: false,
            open_path: None,
            focus_open_path: false,
            source: SourceView::default(),
            events: EventList::default(),
            timeline: TimelineView::default(),
            stats: FrameStats::default(),
            title_dirty: true,
        }
    }

    /// Shows `trace`, from the first event.
    pub fn load_trace(&mut self, trace: Trace, origin: Origin) {
        let model = TraceModel::new(trace);
        self.playback = Playback::new(model.len());
        self.doc = Some(Document { model, origin });
        self.error = None;
        self.source.reset();
        self.events.reset();
        self.timeline.reset();
        self.title_dirty = true;
    }

    /// Records lesson `id` and shows it. An unknown id or a failed recording shows an error.
    pub fn load_lesson(&mut self, id: &str) {
        let Some(lesson) = lessons::find(id) else {
            self.error = Some(format!(
                "There is no lesson {id:?}; the lessons are {}.",
                lessons::ids()
            ));
            return;
        };
        match lessons::load(lesson) {
            Ok(trace) => self.load_trace(trace, Origin::Lesson(lesson.id)),
            Err(e) => self.error = Some(format!("Could not record lesson {}: {e}", lesson.id)),
        }
    }

    /// Shows the trace in `text` (named `name` in messages); a bad trace leaves what was shown
    /// and shows the reader's error, which says what is wrong and where.
    pub fn load_json(&mut self, name: &str, text: &str) {
        match Trace::from_json(text) {
            Ok(trace) => self.load_trace(trace, Origin::File(name.to_owned())),
            Err(e) => self.error = Some(format!("Could not open {name}: {e}")),
        }
    }

    /// As [`App::load_json`], for bytes (a dropped file on the web).
    pub fn load_bytes(&mut self, name: &str, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.load_json(name, text),
            Err(e) => {
                self.error = Some(format!(
                    "Could not open {name}: the trace file is not valid JSON: not UTF-8 text (byte {})",
                    e.valid_up_to()
                ));
            }
        }
    }

    /// Reads and shows the trace file at `path`.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn load_path(&mut self, path: &std::path::Path) {
        let name = path.display().to_string();
        match Trace::read(path) {
            Ok(trace) => self.load_trace(trace, Origin::File(name)),
            Err(e) => self.error = Some(format!("Could not open {name}: {e}")),
        }
    }

    /// Goes to event `step` (clamped to the trace).
    pub fn go_to(&mut self, step: usize) {
        self.playback.go_to(step);
    }

    /// Number of events of the loaded trace (0 when none is loaded).
    pub fn event_count(&self) -> usize {
        self.doc.as_ref().map_or(0, |d| d.model.len())
    }

    /// The loaded trace.
    pub fn trace(&self) -> Option<&Trace> {
        self.doc.as_ref().map(|d| d.model.trace())
    }

    /// The error shown, if any.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// What the app shows now.
    pub fn view_state(&self) -> ViewState {
        let step = self.playback.step();
        let mut state = ViewState {
            step,
            playing: self.playback.playing(),
            speed: self.playback.speed(),
            error: self.error.clone(),
            help_open: self.help_open,
            ..ViewState::default()
        };
        if let Some(doc) = &self.doc {
            let model = &doc.model;
            state.program = Some(model.trace().program.clone());
            state.lesson = match doc.origin {
                Origin::Lesson(id) => Some(id),
                _ => None,
            };
            state.event_count = model.len();
            state.running = model.running(step).map(|id| model.label(id).to_owned());
            if let Some((file, line, _)) = model.marker_at(step).and_then(|m| model.marker(m)) {
                state.source_file = Some(file.to_owned());
                state.source_line = Some(line);
            }
        }
        state
    }

    /// How much the last frame drew.
    pub fn frame_stats(&self) -> FrameStats {
        self.stats
    }

    /// Draws one frame into `ui` (the whole window) and handles its input.
    pub fn show(&mut self, ui: &mut Ui) {
        let ctx = ui.ctx().clone();
        // Keys act before drawing, so the frame already shows their effect.
        for action in crate::keys::pressed(&ctx) {
            self.apply(action, &ctx);
        }
        self.take_dropped_files(&ctx);
        if self.playback.playing() {
            // Capped so that a stalled frame does not leap ahead.
            let dt = ctx.input(|i| i.stable_dt).min(0.5);
            self.playback.tick(dt);
            ctx.request_repaint();
        }
        if std::mem::take(&mut self.title_dirty) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Title(self.title()));
        }

        let mut actions = Vec::new();
        self.draw(ui, &mut actions);
        if !actions.is_empty() {
            for action in actions {
                self.apply(action, &ctx);
            }
            ctx.request_repaint();
        }
    }

    /// The window title.
    fn title(&self) -> String {
        match &self.doc {
            Some(doc) => match &doc.origin {
                Origin::Lesson(id) => format!("greenlet visualizer: lesson {id}"),
                Origin::File(name) | Origin::Memory(name) => format!("greenlet visualizer: {name}"),
            },
            None => "greenlet visualizer".to_owned(),
        }
    }

    /// Opens a file dropped on the window.
    fn take_dropped_files(&mut self, ctx: &Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if let Some(file) = dropped.first() {
            #[cfg(not(target_arch = "wasm32"))]
            self.load_path(file.path());
            #[cfg(target_arch = "wasm32")]
            {
                self.error = Some(format!(
                    "{}: opening dropped files is not supported in this build",
                    file.path().display()
                ));
            }
        }
    }

    /// Does what was asked.
    fn apply(&mut self, action: Action, ctx: &Context) {
        let model = self.doc.as_ref().map(|d| &d.model);
        let step = self.playback.step();
        match action {
            Action::GoTo(i) => self.playback.go_to(i),
            Action::Forward => self.playback.forward(),
            Action::Back => self.playback.back(),
            Action::NextSwitch => {
                if let Some(i) = model.and_then(|m| m.next_transfer(step)) {
                    self.playback.go_to(i);
                }
            }
            Action::PreviousSwitch => {
                if let Some(i) = model.and_then(|m| m.previous_transfer(step)) {
                    self.playback.go_to(i);
                }
            }
            Action::Home => self.playback.go_to(0),
            Action::End => self.playback.go_to(usize::MAX),
            Action::TogglePlay => self.playback.toggle_play(),
            Action::ChangeSpeed(d) => self.playback.change_speed(d),
            Action::SetSpeed(i) => self.playback.set_speed_index(i),
            Action::OpenDialog => self.open_dialog(),
            Action::ShowOpenPath => {
                self.open_path = Some(String::new());
                self.focus_open_path = true;
            }
            Action::OpenPath(path) => {
                self.open_path = None;
                #[cfg(not(target_arch = "wasm32"))]
                self.load_path(std::path::Path::new(path.trim()));
                #[cfg(target_arch = "wasm32")]
                let _ = path;
            }
            Action::LoadLesson(id) => {
                self.playback.pause();
                self.load_lesson(id);
            }
            Action::ToggleHelp => self.help_open = !self.help_open,
            Action::Escape => {
                if self.help_open {
                    self.help_open = false;
                } else if self.open_path.is_some() {
                    self.open_path = None;
                } else {
                    self.error = None;
                }
            }
            Action::DismissError => self.error = None,
            Action::Quit => ctx.send_viewport_cmd(egui::ViewportCommand::Close),
        }
    }

    /// The system's file dialog (natively); on the web, files are dropped instead.
    fn open_dialog(&mut self) {
        #[cfg(not(target_arch = "wasm32"))]
        {
            self.playback.pause();
            let picked = rfd::FileDialog::new()
                .set_title("Open a greenlet trace")
                .add_filter("greenlet trace (JSON)", &["json"])
                .add_filter("any file", &["*"])
                .pick_file();
            match picked {
                Some(path) => self.load_path(&path),
                // No dialog could be shown (no desktop portal or zenity): offer the path field.
                None => {
                    self.open_path = self.open_path.take().or(Some(String::new()));
                    self.focus_open_path = true;
                }
            }
        }
        #[cfg(target_arch = "wasm32")]
        {
            self.error = Some("Drop a trace file on the page to open it.".to_owned());
        }
    }

    /// The whole window.
    fn draw(&mut self, ui: &mut Ui, actions: &mut Vec<Action>) {
        let lesson = self.doc.as_ref().and_then(|d| match d.origin {
            Origin::Lesson(id) => Some(id),
            _ => None,
        });
        egui::Panel::top("menu").show(ui, |ui| toolbar::menu_bar(ui, actions, lesson));

        let App {
            doc,
            playback,
            error,
            source,
            events,
            timeline,
            stats,
            ..
        } = self;
        *stats = FrameStats::default();
        match doc {
            Some(doc) => {
                let model = &doc.model;
                let step = playback.step();
                // Side panels start at a share of the window (the source pane's lines are
                // long), and keep whatever width the user drags them to.
                let width = ui.available_width();
                egui::Panel::top("controls").show(ui, |ui| {
                    toolbar::transport(ui, actions, model, playback);
                    toolbar::status(ui, model, step);
                });
                egui::Panel::bottom("timeline")
                    .exact_size(crate::ui::timeline::preferred_height(model))
                    .show(ui, |ui| {
                        let out = timeline.show(ui, model, step);
                        stats.timeline_shapes = out.shapes;
                        stats.timeline_events = out.events_drawn;
                        if let Some(i) = out.jump {
                            actions.push(Action::GoTo(i));
                        }
                    });
                egui::Panel::left("source")
                    .resizable(true)
                    .default_size((width * 0.3).clamp(300.0, 620.0))
                    .min_size(200.0)
                    .show(ui, |ui| {
                        page::about(ui, &doc.origin, model);
                        stats.source_rows = source.show(ui, model, step);
                    });
                egui::Panel::right("output")
                    .resizable(true)
                    .default_size((width * 0.21).clamp(220.0, 420.0))
                    .min_size(160.0)
                    .show(ui, |ui| {
                        ui.strong("Console");
                        let console_height = (ui.available_height() * 0.4).max(40.0);
                        ui.allocate_ui(egui::vec2(ui.available_width(), console_height), |ui| {
                            stats.console_rows = console::show(ui, model, step);
                        });
                        ui.separator();
                        ui.strong("Events");
                        let out = events.show(ui, model, step);
                        stats.event_rows = out.rows;
                        if let Some(i) = out.jump {
                            actions.push(Action::GoTo(i));
                        }
                    });
                egui::CentralPanel::default().show(ui, |ui| {
                    page::error_banner(ui, error.as_deref(), actions);
                    ui.strong("Greenlets");
                    stats.cards = cards::show(ui, model, step);
                    ui.separator();
                    ui.horizontal(|ui| {
                        ui.strong("Parent tree");
                        ui.weak("each arrow points to the parent, which receives the result");
                    });
                    let tree_height = (ui.available_height() * 0.4).clamp(70.0, 170.0);
                    ui.allocate_ui(egui::vec2(ui.available_width(), tree_height), |ui| {
                        stats.tree_nodes = tree::show(ui, model, step);
                    });
                    ui.separator();
                    ui.horizontal(|ui| {
                        ui.strong("Stacks");
                        ui.weak("to scale; top = high addresses, stacks grow down");
                    });
                    stats.stacks = stacks::show(ui, model, step);
                });
            }
            None => {
                egui::CentralPanel::default().show(ui, |ui| {
                    page::error_banner(ui, error.as_deref(), actions);
                    page::welcome(ui, actions);
                });
            }
        }
        self.overlays(ui.ctx(), actions);
    }

    /// Help, the open-path field, and the drop hint.
    fn overlays(&mut self, ctx: &Context, actions: &mut Vec<Action>) {
        if self.help_open && help::show(ctx) {
            self.help_open = false;
        }
        let focus = std::mem::take(&mut self.focus_open_path);
        if let Some(text) = &mut self.open_path
            && !page::open_path_window(ctx, text, focus, actions)
        {
            self.open_path = None;
        }
        page::drop_hint(ctx);
    }
}
