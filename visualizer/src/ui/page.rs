//! The parts of the window around the views: what is loaded, errors, the welcome page, the
//! path field and the drop hint.

use egui::{Align2, Color32, Context, Key, RichText, Ui};

use crate::action::Action;
use crate::app::Origin;
use crate::lessons;
use crate::model::TraceModel;

/// The lesson's explanation, or what file is shown.
pub fn about(ui: &mut Ui, origin: &Origin, model: &TraceModel) {
    match origin {
        Origin::Lesson(id) => {
            if let Some(lesson) = lessons::find(id) {
                egui::CollapsingHeader::new(RichText::new(lesson.title).strong())
                    .id_salt("about")
                    .default_open(true)
                    .show(ui, |ui| {
                        egui::ScrollArea::vertical()
                            .id_salt("explanation")
                            .max_height(150.0)
                            .show(ui, |ui| {
                                for paragraph in lesson.explanation.split("\n\n") {
                                    ui.label(paragraph);
                                }
                            });
                    });
            }
        }
        Origin::File(name) | Origin::Memory(name) => {
            ui.strong(format!("Trace: {name}"));
            ui.weak(format!(
                "program {}, {} events, {} greenlets, {} switches",
                model.trace().program,
                model.len(),
                model.lanes().len(),
                model.transfer_count()
            ));
        }
    }
    ui.separator();
}

/// The error, if any, in red, with a button to dismiss it.
pub fn error_banner(ui: &mut Ui, error: Option<&str>, actions: &mut Vec<Action>) {
    let Some(error) = error else { return };
    egui::Frame::new()
        .fill(Color32::from_rgb(90, 25, 25))
        .stroke(egui::Stroke::new(1.0, Color32::from_rgb(240, 90, 90)))
        .inner_margin(8.0)
        .corner_radius(4.0)
        .show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.label(
                    RichText::new("⚠")
                        .size(18.0)
                        .color(Color32::from_rgb(255, 150, 150)),
                );
                ui.add(egui::Label::new(RichText::new(error).color(Color32::WHITE)).wrap());
            });
            if ui.button("Dismiss").clicked() {
                actions.push(Action::DismissError);
            }
        });
    ui.add_space(6.0);
}

/// Nothing loaded: how to start.
pub fn welcome(ui: &mut Ui, actions: &mut Vec<Action>) {
    ui.heading("greenlet visualizer");
    ui.label("Step through a greenlet program: its source, every greenlet, the parent tree, the stacks and every switch.");
    ui.add_space(10.0);
    ui.strong("Start with a lesson:");
    for lesson in &lessons::ALL {
        if ui.button(lesson.title).clicked() {
            actions.push(Action::LoadLesson(lesson.id));
        }
    }
    ui.add_space(10.0);
    ui.strong("Or open a trace:");
    ui.label(
        "File → Open, drop a .json file on this window, or run greenlet-visualizer path.json.",
    );
    ui.label("Record your own program with GREENLET_TRACE=trace.json cargo run …");
}

/// The window to type a trace's path in; returns whether it stays open.
pub fn open_path_window(
    ctx: &Context,
    text: &mut String,
    focus: bool,
    actions: &mut Vec<Action>,
) -> bool {
    let mut open = true;
    egui::Window::new("Open a trace file")
        .open(&mut open)
        .collapsible(false)
        .anchor(Align2::CENTER_TOP, [0.0, 80.0])
        .show(ctx, |ui| {
            let label = ui.label("Path of a trace (.json):");
            let field = ui
                .add(egui::TextEdit::singleline(text).desired_width(420.0))
                .labelled_by(label.id);
            // Only when it appears: asked every frame, it would take the keyboard back from
            // the button.
            if focus {
                field.request_focus();
            }
            let enter = field.lost_focus() && ui.input(|i| i.key_pressed(Key::Enter));
            if ui.button("Open").clicked() || enter {
                actions.push(Action::OpenPath(text.clone()));
            }
        });
    open
}

/// While a file is dragged over the window: say what dropping it does.
pub fn drop_hint(ctx: &Context) {
    if ctx.input(|i| i.raw.hovered_files.is_empty()) {
        return;
    }
    let painter = ctx.layer_painter(egui::LayerId::new(
        egui::Order::Foreground,
        egui::Id::unique("drop"),
    ));
    let rect = ctx.content_rect();
    painter.rect_filled(rect, 0.0, Color32::from_black_alpha(180));
    painter.text(
        rect.center(),
        Align2::CENTER_CENTER,
        "Drop a trace file to open it",
        egui::FontId::proportional(28.0),
        Color32::WHITE,
    );
}
