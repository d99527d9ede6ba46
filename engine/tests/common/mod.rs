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

/// Set in a child's environment: run the test's scenario instead of spawning a child.
pub const CHILD_ENV: &str = "GREENLET_TEST_CHILD";

/// Whether this process is a child run of one test (see [`run_child`]).
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn in_child() -> bool {
    std::env::var_os(CHILD_ENV).is_some()
}

/// What a child run of one test left behind.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub struct ChildRun {
    pub signal: Option<i32>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

#[allow(dead_code)] // each test binary uses the helpers it needs
impl ChildRun {
    /// The value of the last `@@key=value` report the child printed on stdout.
    pub fn reported(&self, key: &str) -> Option<&str> {
        let marker = format!("@@{key}=");
        self.stdout.lines().rev().find_map(|l| {
            let at = l.find(marker.as_str())?;
            Some(l[at + marker.len()..].trim())
        })
    }

    /// A reported number; panics, with the child's output, when it was not reported.
    pub fn number(&self, key: &str) -> usize {
        self.reported(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("the child did not report {key}\n{}", self.explain()))
    }

    /// How the child ended and what it printed, for assertion messages.
    pub fn explain(&self) -> String {
        format!(
            "child exited with signal {:?}, code {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.signal, self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the test `name` of this binary in a child process, in child mode, with `env` added.
/// The scenario usually ends the process (a signal); the parent checks how and what it printed.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn run_child(name: &str, env: &[(&str, &str)]) -> ChildRun {
    use std::os::unix::process::ExitStatusExt;
    let out = self_command()
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, "1")
        .env("RUST_BACKTRACE", "0")
        .envs(env.iter().copied())
        .output()
        .expect("run the test binary as a child");
    ChildRun {
        signal: out.status.signal(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Prints `@@key=value` on its own line on stdout and flushes it before the child crashes.
#[allow(dead_code)] // each test binary uses the helpers it needs
pub fn report(key: &str, value: impl std::fmt::Display) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "\n@@{key}={value}").unwrap();
    out.flush().unwrap();
}

/// A frame of about 10 KiB that recurses `depth - 1` more times (`usize::MAX`: until the stack
/// runs out). Not a tail call, and the array is kept in memory by `black_box`; a frame larger
/// than a page is probed page by page (Rust's stack probes), so an overflow faults on the guard
/// rather than jumping over it.
#[allow(dead_code)] // each test binary uses the helpers it needs
#[inline(never)]
pub fn deep_frames(depth: usize) -> usize {
    let mut frame = [0u8; 10240];
    frame[0] = depth as u8;
    let frame = std::hint::black_box(&mut frame);
    if depth <= 1 {
        return frame[0] as usize;
    }
    deep_frames(depth - 1) + frame[10239] as usize
}
