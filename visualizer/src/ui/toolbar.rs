//! The top of the window: menus, the lesson picker, playback controls and the status line.

use egui::{Button, Response, RichText, Role, Ui, WidgetInfo};

use super::style;
use crate::action::Action;
use crate::lessons;
use crate::model::TraceModel;
use crate::playback::{Playback, SPEEDS};

/// The menu bar: File, Lessons, Help.
pub fn menu_bar(ui: &mut Ui, actions: &mut Vec<Action>, current_lesson: Option<&str>) {
    egui::MenuBar::new().ui(ui, |ui| {
        ui.menu_button("File", |ui| {
            if ui.button("Open trace…  (Ctrl+O)").clicked() {
                actions.push(Action::OpenDialog);
            }
            if ui.button("Open path…").clicked() {
                actions.push(Action::ShowOpenPath);
            }
            #[cfg(not(target_arch = "wasm32"))]
            {
                ui.separator();
                if ui.button("Quit").clicked() {
                    actions.push(Action::Quit);
                }
            }
        });
        ui.menu_button("Lessons", |ui| {
            for lesson in &lessons::ALL {
                let selected = current_lesson == Some(lesson.id);
                if ui.selectable_label(selected, lesson.title).clicked() {
                    actions.push(Action::LoadLesson(lesson.id));
                }
            }
        });
        ui.menu_button("Help", |ui| {
            if ui.button("Keys and mouse  (F1 or ?)").clicked() {
                actions.push(Action::ToggleHelp);
            }
        });
        ui.separator();
        lesson_picker(ui, actions, current_lesson);
    });
}

/// A combo box of the lessons, always in view.
fn lesson_picker(ui: &mut Ui, actions: &mut Vec<Action>, current_lesson: Option<&str>) {
    let shown = current_lesson
        .and_then(lessons::find)
        .map_or("choose…", |l| l.title);
    ui.label("Lesson:");
    egui::ComboBox::from_id_salt("lesson picker")
        .selected_text(shown)
        .width(260.0)
        .show_ui(ui, |ui| {
            for lesson in &lessons::ALL {
                if ui
                    .selectable_label(current_lesson == Some(lesson.id), lesson.title)
                    .clicked()
                {
                    actions.push(Action::LoadLesson(lesson.id));
                }
            }
        })
        .response
        .widget_info(|| WidgetInfo::labeled(Role::ComboBox, true, "Lesson"));
}

/// An icon button with a name for screen readers and tests, and a tooltip naming its key.
fn icon_button(ui: &mut Ui, icon: &str, name: &str, key: &str, enabled: bool) -> Response {
    let response = ui
        .add_enabled(
            enabled,
            Button::new(RichText::new(icon).size(16.0)).min_size([30.0, 24.0].into()),
        )
        .on_hover_text(format!("{name} ({key})"))
        .on_disabled_hover_text(format!("{name} ({key})"));
    response.widget_info(|| WidgetInfo::labeled(Role::Button, enabled, name));
    response
}

/// Step, jump, play and speed controls, and the step slider (which scrubs the whole trace).
pub fn transport(ui: &mut Ui, actions: &mut Vec<Action>, model: &TraceModel, playback: &Playback) {
    ui.horizontal(|ui| {
        let step = playback.step();
        let at_start = step == 0;
        let at_end = step >= playback.last();
        if icon_button(ui, "⏮", "First event", "Home", !at_start).clicked() {
            actions.push(Action::Home);
        }
        let prev = model.previous_transfer(step).is_some();
        if icon_button(ui, "⏪", "Previous switch", "Shift+←", prev).clicked() {
            actions.push(Action::PreviousSwitch);
        }
        if icon_button(ui, "⏴", "Step back", "←", !at_start).clicked() {
            actions.push(Action::Back);
        }
        let (icon, name) = if playback.playing() {
            ("⏸", "Pause")
        } else {
            ("▶", "Play")
        };
        if icon_button(ui, icon, name, "Space", playback.len() > 1).clicked() {
            actions.push(Action::TogglePlay);
        }
        if icon_button(ui, "⏵", "Step forward", "→", !at_end).clicked() {
            actions.push(Action::Forward);
        }
        let next = model.next_transfer(step).is_some();
        if icon_button(ui, "⏩", "Next switch", "Shift+→", next).clicked() {
            actions.push(Action::NextSwitch);
        }
        if icon_button(ui, "⏭", "Last event", "End", !at_end).clicked() {
            actions.push(Action::End);
        }
        ui.separator();
        ui.label("Speed");
        let mut speed = playback.speed_index();
        egui::ComboBox::from_id_salt("speed")
            .selected_text(speed_text(SPEEDS[speed]))
            .width(70.0)
            .show_ui(ui, |ui| {
                for (i, s) in SPEEDS.iter().enumerate() {
                    ui.selectable_value(&mut speed, i, speed_text(*s));
                }
            })
            .response
            .on_hover_text("Events per second while playing (+ and - change it)")
            .widget_info(|| WidgetInfo::labeled(Role::ComboBox, true, "Speed"));
        if speed != playback.speed_index() {
            actions.push(Action::SetSpeed(speed));
        }
        ui.separator();
        let mut scrub = step;
        let last = playback.last();
        ui.spacing_mut().slider_width = (ui.available_width() - 190.0).max(80.0);
        let response = ui
            .add_enabled(
                playback.len() > 1,
                egui::Slider::new(&mut scrub, 0..=last).show_value(false),
            )
            .on_hover_text("Drag to scrub through the trace");
        response.widget_info(|| WidgetInfo::slider(true, scrub as f64, "Step"));
        if scrub != step {
            actions.push(Action::GoTo(scrub));
        }
        ui.label(RichText::new(format!("step {step} of {last}")).monospace())
            .on_hover_text("Events are numbered from 0");
    });
}

/// The line under the controls: the current event, and who runs.
pub fn status(ui: &mut Ui, model: &TraceModel, step: usize) {
    ui.horizontal(|ui| {
        if let Some(running) = model.running(step) {
            let state = greenlet::trace::State::Running;
            ui.label(
                RichText::new(format!("Running: {}", model.label(running)))
                    .color(style::state_colour(state))
                    .strong(),
            );
            ui.separator();
        }
        let text = model.describe(step);
        let colour = match model.event(step).map(|e| &e.kind) {
            Some(greenlet::trace::EventKind::Throw { .. }) => style::THROW,
            Some(greenlet::trace::EventKind::Marker { .. }) => style::MARKER,
            Some(greenlet::trace::EventKind::Output { .. }) => style::OUTPUT,
            _ => ui.visuals().text_color(),
        };
        ui.label(RichText::new(format!("#{step}  {text}")).color(colour));
    });
}

/// "2/s", "0.5/s".
fn speed_text(speed: f32) -> String {
    if speed.fract() == 0.0 {
        format!("{speed:.0}/s")
    } else {
        format!("{speed}/s")
    }
}
