//! Helpers shared by the integration tests.

use std::process::Command;

/// A command that runs this test binary again (for tests that need a child process).
///
/// Under emulation (`cargo test --target aarch64-unknown-linux-gnu`, see `.cargo/config.toml`)
/// the kernel cannot execute the binary directly; the runner exports `GREENLET_TEST_RUNNER`
/// (for example `qemu-aarch64 -L /usr/aarch64-linux-gnu`) and the child goes through it too.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn self_command() -> Command {
    command_for(&std::env::current_exe().expect("path of the test binary"))
}

/// A command that runs `exe`, a binary built for the target under test (through the runner
/// when emulated, as [`self_command`] explains).
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn command_for(exe: &std::path::Path) -> Command {
    match std::env::var("GREENLET_TEST_RUNNER") {
        Ok(runner) if !runner.trim().is_empty() => {
            let mut words = runner.split_whitespace();
            let mut c = Command::new(words.next().expect("a runner program"));
            c.args(words).arg(exe);
            c
        }
        _ => Command::new(exe),
    }
}
