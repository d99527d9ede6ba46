//! Colours and number formats shared by the views, so a state looks the same everywhere.

use egui::{Color32, Context, FontDefinitions, FontFamily};
use greenlet::trace::State;

/// Sets up a context for the app: the proportional font falls back to the monospace one for
/// arrows and symbols (→, ●) it lacks. Call before the first frame: glyphs missing in the
/// first frame's layout would be drawn as boxes.
pub fn configure(ctx: &Context) {
    let mut fonts = FontDefinitions::default();
    let mono = fonts
        .families
        .get(&FontFamily::Monospace)
        .and_then(|f| f.first())
        .cloned();
    if let (Some(mono), Some(proportional)) =
        (mono, fonts.families.get_mut(&FontFamily::Proportional))
    {
        proportional.push(mono);
    }
    ctx.set_fonts(fonts);
}

/// Colour of a greenlet state: each state has its own, used on cards, tree nodes, stack bars
/// and timeline lanes.
pub fn state_colour(state: State) -> Color32 {
    match state {
        State::Unstarted => Color32::from_rgb(110, 160, 235),
        State::Running => Color32::from_rgb(90, 200, 110),
        State::Suspended => Color32::from_rgb(235, 175, 60),
        State::Dead => Color32::from_rgb(135, 135, 135),
    }
}

/// A state's name as shown to the user.
pub fn state_name(state: State) -> &'static str {
    match state {
        State::Unstarted => "unstarted",
        State::Running => "running",
        State::Suspended => "suspended",
        State::Dead => "dead",
    }
}

/// Throws and panics.
pub const THROW: Color32 = Color32::from_rgb(240, 85, 85);
/// Kills (a `GreenletExit` ending a greenlet).
pub const KILL: Color32 = Color32::from_rgb(215, 110, 215);
/// Ordinary switches.
pub const SWITCH: Color32 = Color32::from_rgb(200, 205, 220);
/// Step markers.
pub const MARKER: Color32 = Color32::from_rgb(120, 190, 240);
/// Program output.
pub const OUTPUT: Color32 = Color32::from_rgb(215, 210, 130);
/// The current step (timeline cursor, highlighted rows).
pub const CURSOR: Color32 = Color32::from_rgb(255, 225, 110);
/// Guard pages.
pub const GUARD: Color32 = Color32::from_rgb(170, 60, 60);
/// High-water marks.
pub const HIGH_WATER: Color32 = Color32::from_rgb(255, 120, 80);

/// A byte count in B, KiB or MiB.
pub fn bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{:.1} KiB", n as f64 / KIB as f64)
    } else {
        format!("{n} B")
    }
}

/// An address in hex.
pub fn hex(addr: u64) -> String {
    format!("{addr:#014x}")
}

/// Text cut to at most `max` characters, with an ellipsis when cut.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_bytes_addresses_and_text() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 * 1024), "64.0 KiB");
        assert_eq!(bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(hex(0x7f12_3456_7000), "0x7f1234567000");
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
    }

    #[test]
    fn every_state_has_its_own_colour() {
        let states = [
            State::Unstarted,
            State::Running,
            State::Suspended,
            State::Dead,
        ];
        for (i, a) in states.iter().enumerate() {
            for b in &states[i + 1..] {
                assert_ne!(state_colour(*a), state_colour(*b));
            }
        }
    }
}
