//! The command line.

use std::path::PathBuf;

use clap::Parser;

/// Step through a recorded greenlet program: source, greenlets, parent tree, stacks, switches.
#[derive(Debug, Parser, PartialEq)]
#[command(
    name = "greenlet-visualizer",
    version,
    after_help = "Without a trace or --lesson, the first lesson (seed) opens.\n\
                  Record a program of your own with GREENLET_TRACE=trace.json, then open trace.json.\n\
                  Keys: ←/→ step, Shift+←/→ switch, Space play, Home/End, F1 or ? for help."
)]
pub struct Cli {
    /// A trace file (JSON, as written by greenlet::trace or GREENLET_TRACE) to open.
    #[arg(value_name = "TRACE.json")]
    pub trace: Option<PathBuf>,

    /// Open a bundled lesson: seed, pingpong, generator, pipeline, parents, panics, recursion.
    #[arg(long, value_name = "NAME", conflicts_with = "trace")]
    pub lesson: Option<String>,

    /// Open a synthetic trace of N events (to try a large trace).
    #[arg(long, value_name = "N", conflicts_with_all = ["trace", "lesson"])]
    pub synthetic: Option<usize>,

    /// Start at this step (event index, from 0).
    #[arg(long, value_name = "N")]
    pub step: Option<usize>,

    /// Render one frame to this PNG file and exit, without opening a window.
    #[arg(long, value_name = "OUT.png")]
    pub screenshot: Option<PathBuf>,

    /// Open the real window, save a picture of it to this PNG once it has settled, and exit
    /// (needs a display; a check of the native window path).
    #[arg(long, value_name = "OUT.png", conflicts_with = "screenshot")]
    pub window_screenshot: Option<PathBuf>,

    /// Size of the window or of the --screenshot frame, WIDTHxHEIGHT (logical pixels).
    #[arg(long, value_name = "WxH", default_value = "1280x720", value_parser = parse_size)]
    pub size: [u32; 2],

    /// Write the trace (e.g. a freshly recorded lesson) to this JSON file and exit.
    #[arg(long, value_name = "OUT.json")]
    pub export: Option<PathBuf>,

    /// List the bundled lessons and exit.
    #[arg(long)]
    pub list_lessons: bool,
}

/// Parses `1280x720`.
fn parse_size(text: &str) -> Result<[u32; 2], String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, like 1280x720, not {text:?}"))?;
    let dim = |s: &str| -> Result<u32, String> {
        match s.trim().parse::<u32>() {
            Ok(n) if (64..=8192).contains(&n) => Ok(n),
            _ => Err(format!("{s:?} is not a size between 64 and 8192 pixels")),
        }
    };
    Ok([dim(w)?, dim(h)?])
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn screenshot_of_a_lesson_at_a_step() {
        let cli = Cli::try_parse_from([
            "greenlet-visualizer",
            "--screenshot",
            "out.png",
            "--step",
            "7",
            "--lesson",
            "pingpong",
            "--size",
            "800x600",
        ])
        .unwrap();
        assert_eq!(cli.screenshot, Some(PathBuf::from("out.png")));
        assert_eq!(cli.step, Some(7));
        assert_eq!(cli.lesson.as_deref(), Some("pingpong"));
        assert_eq!(cli.size, [800, 600]);
    }

    #[test]
    fn a_trace_and_a_lesson_conflict() {
        assert!(Cli::try_parse_from(["v", "t.json", "--lesson", "seed"]).is_err());
    }

    #[test]
    fn sizes_are_checked() {
        assert_eq!(parse_size("1280x720"), Ok([1280, 720]));
        assert!(parse_size("1280").is_err());
        assert!(parse_size("0x720").is_err());
        assert!(parse_size("axb").is_err());
    }
}
