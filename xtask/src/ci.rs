//! `cargo xtask ci`: every check and test, in a fixed order, stopping at the
//! first failure and ending with a table of how long each step took.
//!
//! Cheap checks run first so that a formatting slip fails in seconds rather
//! than after the whole test suite.

use std::fmt;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};

use crate::{Result, asan, cmd, debugging, setup, valgrind, visualizer, wasm, web};

/// Flags of `cargo xtask ci`; the defaults are what CI runs.
#[derive(Debug, Args)]
pub struct CiArgs {
    /// Skip the setup step when the machine is known to be ready.
    #[arg(long)]
    pub skip_setup: bool,

    /// Run only this step (repeatable). Steps still run in CI order, and
    /// setup still runs unless --skip-setup is given.
    #[arg(long, value_name = "STEP")]
    pub only: Vec<Step>,
}

/// One step of the CI run; declaration order is execution order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Step {
    /// Machine setup; a prerequisite rather than a check, so it is selected
    /// with `--skip-setup` and is not a valid `--only` value.
    #[value(skip)]
    Setup,
    /// `cargo fmt --check` over the workspace.
    Fmt,
    /// Clippy over every target, warnings denied.
    Clippy,
    /// Unit, integration and doc tests.
    Test,
    /// The engine's semantics, model and drop tests under valgrind memcheck: no error, no
    /// definite leak (see `valgrind.rs`).
    Valgrind,
    /// The same tests built with nightly's AddressSanitizer and the engine's fiber annotations
    /// (skipped without a nightly toolchain; see `asan.rs`).
    Asan,
    /// The engine's tests cross-compiled for aarch64 Linux, run under qemu user emulation.
    Aarch64,
    /// Frame-pointer walks across greenlet stacks (a build with frame pointers) and the
    /// macOS assemble-only builds; see `debugging.rs`.
    Debugging,
    /// Rustdoc, warnings (e.g. broken intra-doc links) denied.
    Doc,
    /// Runs every engine example; the seed example's output must match exactly.
    Examples,
    /// The visualizer renders real pictures: headless, and in a window under Xvfb; see
    /// `visualizer.rs`.
    Visualizer,
    /// The web page: built for wasm32, served on localhost, driven in headless Chromium; see
    /// `web.rs`.
    Web,
    /// wasm32: clippy for the target, and the conformance harness under wasmtime.
    Wasm,
}

impl Step {
    /// All steps in execution order.
    pub const ALL: [Step; 13] = [
        Step::Setup,
        Step::Fmt,
        Step::Clippy,
        Step::Test,
        Step::Valgrind,
        Step::Asan,
        Step::Aarch64,
        Step::Debugging,
        Step::Doc,
        Step::Examples,
        Step::Visualizer,
        Step::Web,
        Step::Wasm,
    ];

    /// Name used in headers, errors and the summary; matches the `--only`
    /// value.
    pub fn name(self) -> &'static str {
        match self {
            Step::Setup => "setup",
            Step::Fmt => "fmt",
            Step::Clippy => "clippy",
            Step::Test => "test",
            Step::Valgrind => "valgrind",
            Step::Asan => "asan",
            Step::Aarch64 => "aarch64",
            Step::Debugging => "debugging",
            Step::Doc => "doc",
            Step::Examples => "examples",
            Step::Visualizer => "visualizer",
            Step::Web => "web",
            Step::Wasm => "wasm",
        }
    }

    fn run(self) -> Result {
        match self {
            Step::Setup => setup::run(),
            Step::Fmt => cmd::run(&mut cmd::cargo(["fmt", "--all", "--", "--check"])),
            Step::Clippy => cmd::run(&mut cmd::cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ])),
            Step::Test => cmd::run(&mut cmd::cargo(["test", "--workspace"])),
            Step::Valgrind => valgrind::run(),
            Step::Asan => asan::run(),
            // Only the engine: it holds the per-architecture assembly; xtask is host tooling.
            // Benches are not built by `cargo test`; linker and runner come from
            // .cargo/config.toml.
            Step::Aarch64 => cmd::run(&mut cmd::cargo([
                "test",
                "-p",
                "greenlet",
                "--target",
                "aarch64-unknown-linux-gnu",
            ])),
            // RUSTDOCFLAGS only reaches rustdoc, so unlike RUSTFLAGS it does
            // not invalidate the compiled artifacts the other steps share.
            Step::Doc => cmd::run(
                cmd::cargo(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"),
            ),
            Step::Debugging => debugging::run(),
            Step::Examples => run_examples(),
            Step::Visualizer => visualizer::run(),
            Step::Web => web::ci(),
            Step::Wasm => wasm::run(),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs the CI steps selected by `args`.
pub fn run(args: &CiArgs) -> Result {
    let steps = plan(args.skip_setup, &args.only);
    let total_start = Instant::now();
    let mut timings: Vec<(Step, Duration, bool)> = Vec::new();
    for (index, &step) in steps.iter().enumerate() {
        println!();
        println!("==> [{}/{}] {step}", index + 1, steps.len());
        let start = Instant::now();
        let result = step.run();
        let elapsed = start.elapsed();
        timings.push((step, elapsed, result.is_ok()));
        if let Err(err) = result {
            print_summary(&timings, total_start.elapsed());
            return Err(format!("ci step `{step}` failed: {err}").into());
        }
        println!("<== {step} passed in {}", cmd::format_duration(elapsed));
    }
    print_summary(&timings, total_start.elapsed());
    println!("all {} steps passed", steps.len());
    Ok(())
}

/// The steps to run, in execution order, whatever order `only` lists them.
fn plan(skip_setup: bool, only: &[Step]) -> Vec<Step> {
    Step::ALL
        .into_iter()
        .filter(|step| match step {
            Step::Setup => !skip_setup,
            _ => only.is_empty() || only.contains(step),
        })
        .collect()
}

fn print_summary(timings: &[(Step, Duration, bool)], total: Duration) {
    println!();
    println!("==> summary");
    println!("  {:<8} {:>9}  status", "step", "time");
    for &(step, elapsed, ok) in timings {
        let status = if ok { "ok" } else { "FAILED" };
        println!(
            "  {:<8} {:>9}  {status}",
            step.name(),
            cmd::format_duration(elapsed)
        );
    }
    println!("  {:<8} {:>9}", "total", cmd::format_duration(total));
}

/// What the seed example must print, line by line.
const SEED_EXPECTED: [&str; 5] = [
    "entering greenlet 1",
    "in func1 (greenlet 1)",
    "re-entering greenlet 1",
    "exiting func1 (greenlet 1)",
    "exiting program",
];

/// Examples that must run to completion (they assert their own results).
const OTHER_EXAMPLES: [&str; 3] = ["pingpong", "generator", "pipeline"];

fn run_examples() -> Result {
    run_seed()?;
    for example in OTHER_EXAMPLES {
        cmd::run(&mut cmd::cargo([
            "run",
            "-p",
            "greenlet",
            "--example",
            example,
        ]))?;
    }
    Ok(())
}

fn run_seed() -> Result {
    let stdout = cmd::stdout(&mut cmd::cargo([
        "run",
        "-p",
        "greenlet",
        "--example",
        "seed",
    ]))?;
    // Shown so a mismatch can be read in the log without re-running.
    print!("{stdout}");
    check_seed_output(&stdout).map_err(Into::into)
}

/// Checks the seed example's stdout against [`SEED_EXPECTED`], naming the
/// first line that differs.
///
/// A missing final newline is tolerated; anything else (extra lines, `\r`,
/// trailing spaces) is a mismatch, since the output is the specification.
fn check_seed_output(stdout: &str) -> std::result::Result<(), String> {
    let body = stdout.strip_suffix('\n').unwrap_or(stdout);
    let lines: Vec<&str> = if body.is_empty() {
        Vec::new()
    } else {
        body.split('\n').collect()
    };
    let line_count = lines.len().max(SEED_EXPECTED.len());
    let Some(index) = (0..line_count).find(|&i| lines.get(i) != SEED_EXPECTED.get(i)) else {
        return Ok(());
    };
    let show =
        |line: Option<&&str>| line.map_or_else(|| "end of output".to_owned(), |l| format!("{l:?}"));
    Err(format!(
        "seed output differs at line {}: expected {}, got {}",
        index + 1,
        show(SEED_EXPECTED.get(index)),
        show(lines.get(index)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "entering greenlet 1\nin func1 (greenlet 1)\nre-entering greenlet 1\n\
                        exiting func1 (greenlet 1)\nexiting program\n";

    #[test]
    fn expected_seed_output_passes() {
        assert_eq!(check_seed_output(GOOD), Ok(()));
        assert_eq!(check_seed_output(GOOD.trim_end_matches('\n')), Ok(()));
    }

    #[test]
    fn seed_mismatch_names_the_first_differing_line() {
        let swapped = GOOD.replace("re-entering", "entering");
        let err = check_seed_output(&swapped).unwrap_err();
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains(r#"got "entering greenlet 1""#), "{err}");
    }

    #[test]
    fn seed_output_must_not_be_short_or_long() {
        let short = check_seed_output("entering greenlet 1\n").unwrap_err();
        assert!(
            short.contains("line 2") && short.contains("end of output"),
            "{short}"
        );
        let long = check_seed_output(&format!("{GOOD}extra\n")).unwrap_err();
        assert!(
            long.contains("line 6") && long.contains("expected end of output"),
            "{long}"
        );
        assert!(check_seed_output("").unwrap_err().contains("line 1"));
    }

    #[test]
    fn seed_output_rejects_carriage_returns_and_blank_tail() {
        assert!(check_seed_output(&GOOD.replace('\n', "\r\n")).is_err());
        assert!(check_seed_output(&format!("{GOOD}\n")).is_err());
    }

    #[test]
    fn plan_keeps_ci_order_and_setup_unless_skipped() {
        use Step::*;
        assert_eq!(plan(false, &[]), Step::ALL);
        assert_eq!(
            plan(true, &[]),
            [
                Fmt, Clippy, Test, Valgrind, Asan, Aarch64, Debugging, Doc, Examples, Visualizer,
                Web, Wasm
            ]
        );
        assert_eq!(
            plan(false, &[Examples, Fmt, Examples]),
            [Setup, Fmt, Examples]
        );
        assert_eq!(plan(true, &[Doc]), [Doc]);
    }
}
