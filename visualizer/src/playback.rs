//! Where the viewer is in the trace, and how it moves: steps, jumps and timed playback.

/// Playback speeds offered, in events per second.
pub const SPEEDS: [f32; 9] = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 64.0, 256.0, 1024.0];

/// The current step of a trace of `len` events, and whether it is playing.
#[derive(Debug, Clone, PartialEq)]
pub struct Playback {
    step: usize,
    len: usize,
    playing: bool,
    speed_index: usize,
    /// Fraction of a step accumulated by playback between frames.
    carry: f32,
}

impl Playback {
    /// At the first event of a trace of `len` events, paused, at 2 events per second.
    pub fn new(len: usize) -> Playback {
        Playback {
            step: 0,
            len,
            playing: false,
            speed_index: 2,
            carry: 0.0,
        }
    }

    /// The current event index (0 for an empty trace).
    pub fn step(&self) -> usize {
        self.step
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no events.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The last valid step.
    pub fn last(&self) -> usize {
        self.len.saturating_sub(1)
    }

    /// Goes to `step`, clamped to the trace. Stops playback only if it reaches the end.
    pub fn go_to(&mut self, step: usize) {
        self.step = step.min(self.last());
        self.carry = 0.0;
        if self.step == self.last() {
            self.playing = false;
        }
    }

    /// One event forward.
    pub fn forward(&mut self) {
        self.go_to(self.step.saturating_add(1));
    }

    /// One event back.
    pub fn back(&mut self) {
        self.go_to(self.step.saturating_sub(1));
    }

    /// Whether playback is running.
    pub fn playing(&self) -> bool {
        self.playing
    }

    /// Starts or stops playback; starting at the end starts over from the beginning.
    pub fn toggle_play(&mut self) {
        if self.playing {
            self.playing = false;
        } else if self.len > 1 {
            if self.step == self.last() {
                self.step = 0;
            }
            self.playing = true;
            self.carry = 0.0;
        }
    }

    /// Stops playback.
    pub fn pause(&mut self) {
        self.playing = false;
    }

    /// Events per second.
    pub fn speed(&self) -> f32 {
        SPEEDS[self.speed_index]
    }

    /// Index into [`SPEEDS`].
    pub fn speed_index(&self) -> usize {
        self.speed_index
    }

    /// Sets the speed by index into [`SPEEDS`] (clamped).
    pub fn set_speed_index(&mut self, index: usize) {
        self.speed_index = index.min(SPEEDS.len() - 1);
    }

    /// Faster (`+1`) or slower (`-1`).
    pub fn change_speed(&mut self, delta: isize) {
        self.set_speed_index(self.speed_index.saturating_add_signed(delta));
    }

    /// Advances playback by `dt` seconds; returns whether the step changed.
    pub fn tick(&mut self, dt: f32) -> bool {
        if !self.playing {
            return false;
        }
        self.carry += dt.max(0.0) * self.speed();
        let whole = self.carry.floor();
        if whole < 1.0 {
            return false;
        }
        self.carry -= whole;
        let before = self.step;
        let carry = self.carry;
        self.go_to(before.saturating_add(whole as usize));
        self.carry = carry;
        self.step != before
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_clamped_to_the_trace() {
        let mut p = Playback::new(3);
        p.back();
        assert_eq!(p.step(), 0);
        p.forward();
        p.forward();
        p.forward();
        assert_eq!(p.step(), 2);
        p.go_to(100);
        assert_eq!(p.step(), 2);
        let mut empty = Playback::new(0);
        empty.forward();
        assert_eq!(empty.step(), 0);
        empty.toggle_play();
        assert!(!empty.playing(), "nothing to play");
    }

    #[test]
    fn playback_advances_with_time_and_stops_at_the_end() {
        let mut p = Playback::new(10);
        p.set_speed_index(3); // 4 events per second
        p.toggle_play();
        assert!(!p.tick(0.2), "0.8 of a step is not a step");
        assert!(p.tick(0.1));
        assert_eq!(p.step(), 1);
        assert!(p.tick(1.0));
        assert_eq!(p.step(), 5);
        p.tick(10.0);
        assert_eq!(p.step(), 9);
        assert!(!p.playing(), "playback stops at the last event");
        p.toggle_play();
        assert_eq!(p.step(), 0, "playing from the end starts over");
        assert!(p.playing());
    }

    #[test]
    fn speed_changes_are_clamped() {
        let mut p = Playback::new(2);
        p.change_speed(-10);
        assert_eq!(p.speed(), SPEEDS[0]);
        p.change_speed(100);
        assert_eq!(p.speed(), SPEEDS[SPEEDS.len() - 1]);
    }
}
