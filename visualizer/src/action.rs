//! What the user asked for this frame, from a key, a button, a menu or a view: collected while
//! drawing and applied once the frame's views are done, so no view needs the whole app.

/// One request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Go to this event.
    GoTo(usize),
    /// One event forward.
    Forward,
    /// One event back.
    Back,
    /// To the next switch or throw.
    NextSwitch,
    /// To the previous switch or throw.
    PreviousSwitch,
    /// To the first event.
    Home,
    /// To the last event.
    End,
    /// Play or pause.
    TogglePlay,
    /// Play faster (`+1`) or slower (`-1`).
    ChangeSpeed(isize),
    /// Set the speed (index into [`SPEEDS`](crate::playback::SPEEDS)).
    SetSpeed(usize),
    /// Open a trace with the system's file dialog.
    OpenDialog,
    /// Show the field to type a trace's path.
    ShowOpenPath,
    /// Open the trace at this path.
    OpenPath(String),
    /// Record and show the lesson with this id.
    LoadLesson(&'static str),
    /// Show or hide the help overlay.
    ToggleHelp,
    /// Close whatever overlay is open (help, the path field, the error).
    Escape,
    /// Hide the error banner.
    DismissError,
    /// Close the window.
    Quit,
}
