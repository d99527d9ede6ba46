//! `cargo xtask run`: the project's main job.
//!
//! Kept apart from CI because it will grow into building the engine and then
//! launching the visualizer, none of which belongs in the checks.

use crate::{Result, cmd};

/// Runs the main job: today the seed example, built in release mode because
/// that is the configuration whose behaviour users see.
pub fn run() -> Result {
    cmd::run(&mut cmd::cargo([
        "run",
        "--release",
        "-p",
        "greenlet",
        "--example",
        "seed",
    ]))
}
