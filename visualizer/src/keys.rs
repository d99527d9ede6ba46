//! The keyboard: which keys do what (the help overlay lists the same, see
//! [`crate::ui::help::KEYS`]).

use egui::{Context, Key, Modifiers};

use crate::action::Action;

/// The keyboard shortcuts pressed this frame, consumed so no widget also acts on them.
pub fn pressed(ctx: &Context) -> Vec<Action> {
    let mut actions = Vec::new();
    let typing = ctx.egui_wants_keyboard_input();
    ctx.input_mut(|i| {
        if i.consume_key(Modifiers::NONE, Key::Escape) {
            actions.push(Action::Escape);
        }
        if typing {
            return;
        }
        // Most specific first: consume_key ignores extra Shift.
        let bindings = [
            (Modifiers::SHIFT, Key::ArrowRight, Action::NextSwitch),
            (Modifiers::SHIFT, Key::ArrowLeft, Action::PreviousSwitch),
            (Modifiers::NONE, Key::ArrowRight, Action::Forward),
            (Modifiers::NONE, Key::ArrowLeft, Action::Back),
            (Modifiers::NONE, Key::Space, Action::TogglePlay),
            (Modifiers::NONE, Key::Home, Action::Home),
            (Modifiers::NONE, Key::End, Action::End),
            (Modifiers::NONE, Key::F1, Action::ToggleHelp),
            (Modifiers::NONE, Key::Questionmark, Action::ToggleHelp),
            (Modifiers::NONE, Key::Plus, Action::ChangeSpeed(1)),
            (Modifiers::NONE, Key::Equals, Action::ChangeSpeed(1)),
            (Modifiers::NONE, Key::Minus, Action::ChangeSpeed(-1)),
            (Modifiers::COMMAND, Key::O, Action::OpenDialog),
        ];
        for (modifiers, key, action) in bindings {
            for _ in 0..i.count_and_consume_key(modifiers, key) {
                actions.push(action.clone());
            }
        }
        // `?` typed with Shift arrives as text on some keyboards, not as a key.
        let typed_question = i
            .events
            .iter()
            .any(|e| matches!(e, egui::Event::Text(t) if t == "?"));
        if typed_question && !actions.contains(&Action::ToggleHelp) {
            actions.push(Action::ToggleHelp);
        }
    });
    actions
}
