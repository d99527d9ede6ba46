//! Running child processes with a uniform echo, timing and error context, so
//! every task's log reads the same way and a failure names the exact command.

use std::ffi::OsStr;
use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use crate::Result;

/// Root of the workspace; children run there so `--workspace` and relative
/// paths mean the same thing whichever directory `cargo xtask` was started in.
pub fn workspace_root() -> &'static Path {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        // `cargo run` (which `cargo xtask` is) tells the binary where its manifest is; the
        // compile-time path is only a fallback, because a target directory shared by several
        // clones (CI's) may hold an xtask binary built from another clone.
        let manifest = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        // The xtask crate sits directly under the workspace root.
        manifest
            .parent()
            .expect("the xtask manifest directory has a parent")
            .to_path_buf()
    })
}

/// A `cargo` command with `args`, run from the workspace root.
///
/// `$CARGO` (set by cargo when it runs `cargo xtask`) points at the toolchain
/// that built xtask, so the children use that same toolchain even if a
/// different `cargo` comes first on `PATH`. No environment variable is added
/// here: every cargo child must see the same environment, otherwise cargo
/// fingerprints differ and steps rebuild each other's artifacts.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.args(args).current_dir(workspace_root());
    cmd
}

/// Runs `cmd` with the terminal as its stdio and fails unless it exits
/// successfully.
pub fn run(cmd: &mut Command) -> Result {
    let shown = echo(cmd);
    let start = Instant::now();
    let status = cmd.status().map_err(|err| spawn_error(&shown, &err))?;
    check(&shown, status, start.elapsed())
}

/// Runs `cmd` and returns its stdout, failing unless it exits successfully.
///
/// Stderr stays on the terminal so compiler progress, warnings and panic
/// messages remain visible in the log.
pub fn stdout(cmd: &mut Command) -> Result<String> {
    let shown = echo(cmd);
    let start = Instant::now();
    let output = cmd
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|err| spawn_error(&shown, &err))?;
    check(&shown, output.status, start.elapsed())?;
    String::from_utf8(output.stdout)
        .map_err(|_| format!("`{shown}` printed invalid UTF-8 on stdout").into())
}

/// Runs a query command silently, returning its output whatever its exit
/// status: for probes like `dpkg-query`, failing *is* the answer.
pub fn probe(cmd: &mut Command) -> io::Result<Output> {
    cmd.stdin(Stdio::null()).stderr(Stdio::null()).output()
}

/// Prints the command about to run and returns its printable form.
fn echo(cmd: &Command) -> String {
    let shown = display(cmd);
    println!("$ {shown}");
    shown
}

fn spawn_error(shown: &str, err: &io::Error) -> Box<dyn std::error::Error> {
    let hint = if err.kind() == io::ErrorKind::NotFound {
        " (is it installed and on PATH?)"
    } else {
        ""
    };
    format!("could not start `{shown}`: {err}{hint}").into()
}

fn check(shown: &str, status: ExitStatus, elapsed: Duration) -> Result {
    if status.success() {
        println!("  ok in {}", format_duration(elapsed));
        Ok(())
    } else {
        Err(format!(
            "`{shown}` failed ({status}) after {}",
            format_duration(elapsed)
        )
        .into())
    }
}

/// Renders `cmd` as a shell command line a developer can paste to reproduce
/// it, including the environment variables set on it.
pub fn display(cmd: &Command) -> String {
    let mut parts = Vec::new();
    for (key, value) in cmd.get_envs() {
        if let Some(value) = value {
            parts.push(format!(
                "{}={}",
                key.to_string_lossy(),
                shell_quote(&value.to_string_lossy())
            ));
        }
    }
    // `$CARGO` is an absolute path into the toolchain; the bare name is what a
    // developer would type and keeps the log readable.
    let program = Path::new(cmd.get_program())
        .file_name()
        .unwrap_or(cmd.get_program());
    parts.push(shell_quote(&program.to_string_lossy()));
    parts.extend(
        cmd.get_args()
            .map(|arg| shell_quote(&arg.to_string_lossy())),
    );
    parts.join(" ")
}

/// Quotes `word` for a POSIX shell, leaving common safe words bare so logs
/// stay readable.
pub fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:=,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Formats a wall-clock duration for logs and the summary table.
pub fn format_duration(duration: Duration) -> String {
    // Round to tenths first so 59.96s prints as 1m00.0s rather than 60.0s.
    let tenths = (duration.as_secs_f64() * 10.0).round() as u64;
    let (minutes, tenths) = (tenths / 600, tenths % 600);
    let (secs, tenth) = (tenths / 10, tenths % 10);
    if minutes == 0 {
        format!("{secs}.{tenth}s")
    } else {
        format!("{minutes}m{secs:02}.{tenth}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_the_shell_would_split_or_expand() {
        assert_eq!(shell_quote("--all"), "--all");
        assert_eq!(
            shell_quote("DPkg::Lock::Timeout=900"),
            "DPkg::Lock::Timeout=900"
        );
        assert_eq!(shell_quote("-D warnings"), "'-D warnings'");
        assert_eq!(shell_quote("-f=${Status}"), "'-f=${Status}'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn display_shows_env_program_name_and_args() {
        let mut cmd = Command::new("/opt/toolchain/bin/cargo");
        cmd.args(["doc", "--workspace"])
            .env("RUSTDOCFLAGS", "-D warnings");
        assert_eq!(
            display(&cmd),
            "RUSTDOCFLAGS='-D warnings' cargo doc --workspace"
        );
    }

    #[test]
    fn durations_switch_to_minutes_after_a_minute() {
        assert_eq!(format_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_duration(Duration::from_millis(59_940)), "59.9s");
        assert_eq!(format_duration(Duration::from_millis(59_960)), "1m00.0s");
        assert_eq!(format_duration(Duration::from_millis(123_400)), "2m03.4s");
    }
}
