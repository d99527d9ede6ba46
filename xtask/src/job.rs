//! `cargo xtask run`: the project's main job, the visualizer.
//!
//! It installs the libraries the window loads at run time when they are missing (as root, on
//! Debian; elsewhere it says what is missing and tries anyway), then starts the visualizer in
//! release mode, the configuration whose behaviour users see. Without a display there is no
//! window to open: it renders the first lesson to a PNG instead and says where.

use std::path::PathBuf;

use crate::{Result, cmd, setup};

/// Runs the main job.
pub fn run() -> Result {
    if let Err(err) = setup::ensure_visualizer_runtime() {
        // Not fatal: on another system the libraries may be there under other names.
        eprintln!("warning: could not check the visualizer's run-time libraries: {err}");
    }
    let mut visualizer = cmd::cargo(["run", "--release", "-p", "greenlet-visualizer"]);
    if !has_display() {
        let png = target_dir().join("visualizer.png");
        println!(
            "No display (DISPLAY and WAYLAND_DISPLAY are unset), so no window can open: \
             rendering the first lesson to {} instead.",
            png.display()
        );
        visualizer.arg("--").arg("--screenshot").arg(&png);
        cmd::run(&mut visualizer)?;
        println!("Wrote {}", png.display());
        return Ok(());
    }
    cmd::run(&mut visualizer)
}

/// Whether a window can be shown: an X11 or Wayland display is set.
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|d| !d.is_empty()))
}

/// `$CARGO_TARGET_DIR`, or the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::workspace_root().join("target"))
}
