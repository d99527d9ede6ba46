//! `cargo xtask ci`, step `debugging`: what the test suite cannot check in its own build.
//!
//! - Frame-pointer walks across greenlet stacks need every frame to have a record, i.e. a
//!   build with `-C force-frame-pointers=yes`. Only the `debugging` example is built that way,
//!   in a target directory of its own, so the flags never invalidate the shared artifacts.
//! - macOS: the engine must assemble for `aarch64-apple-darwin` and `x86_64-apple-darwin`
//!   (Mach-O symbols, no ELF-only directives). `cargo build --lib` runs the assembler without
//!   linking, so no macOS SDK is needed; nothing runs there.

use std::path::PathBuf;

use crate::{Result, cmd};

/// Targets whose assembly is checked (built, not run).
pub const MACOS_TARGETS: [&str; 2] = ["aarch64-apple-darwin", "x86_64-apple-darwin"];

/// Runs both checks.
pub fn run() -> Result {
    frame_pointer_walk()?;
    for target in MACOS_TARGETS {
        cmd::run(&mut cmd::cargo([
            "build", "-p", "greenlet", "--lib", "--target", target,
        ]))?;
    }
    Ok(())
}

/// Builds the example with frame pointers and checks its hand-made walk crosses from the inner
/// greenlet's stack into the outer one's and on to `main`, for stacks on either side.
fn frame_pointer_walk() -> Result {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::workspace_root().join("target"))
        .join("frame-pointers");
    cmd::run(
        cmd::cargo(["build", "-p", "greenlet", "--example", "debugging"])
            .env("RUSTFLAGS", "-C force-frame-pointers=yes")
            .env("CARGO_TARGET_DIR", &target_dir),
    )?;
    let exe = target_dir.join("debug").join("examples").join("debugging");
    for placement in ["below", "above"] {
        let out = cmd::stdout(std::process::Command::new(&exe).args(["frames", placement]))?;
        print!("{out}");
        check_walk(&out).map_err(|e| format!("frame-pointer walk ({placement}): {e}"))?;
    }
    Ok(())
}

/// The walk must show, in this order: the inner greenlet's function, the trampoline at the
/// bottom of its stack, the outer greenlet's function, another trampoline, and `main`.
fn check_walk(out: &str) -> std::result::Result<(), String> {
    let frames: Vec<&str> = out.lines().filter(|l| l.starts_with("frame ")).collect();
    let mut from = 0;
    for want in [
        "inner_frame",
        "trampoline",
        "outer_frame",
        "trampoline",
        "main",
    ] {
        match frames[from..].iter().position(|f| f.contains(want)) {
            Some(i) => from += i + 1,
            None => return Err(format!("no {want:?} after frame {from} in:\n{out}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_walk_must_cross_both_stacks_in_order() {
        let good = "frame 0x1 debugging::inner_frame\nframe 0x2 greenlet::arch::x86_64::trampoline\n\
                    frame 0x3 outer_frame\nframe 0x4 greenlet::arch::x86_64::trampoline\nframe 0x5 main\n";
        assert!(check_walk(good).is_ok());
        let stops =
            "frame 0x1 debugging::inner_frame\nframe 0x2 greenlet::arch::x86_64::trampoline\n";
        assert!(check_walk(stops).unwrap_err().contains("outer_frame"));
    }
}
