//! `cargo xtask bench`: runs the engine's benchmarks, greenlet beside corosensei in the same
//! run, and prints one Markdown table: figure | ours | corosensei | ratio.
//!
//! - Criterion (`engine/benches/switch.rs`) times the switch and the spawn; the medians are
//!   read from `target/criterion/<group>/<bench>/new/estimates.json`, not scraped from its
//!   output.
//! - `engine/benches/figures.rs` measures the chain and the density limit in child processes
//!   and prints `@@key=value` lines.
//! - Callgrind counts instructions per switch and per spawn: the figures binary does N
//!   ping-pong round trips (or N spawns) for two values of N, and the difference of the totals
//!   over the extra operations is the cost of one. Counts repeat from run to run where
//!   wall-clock time on a shared machine does not.

use std::collections::BTreeMap;
use std::process::Command;

use clap::Args;

use crate::{Result, cmd};

/// Flags of `cargo xtask bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Short criterion runs (1 s warm-up, 2 s measurement) while iterating; the published
    /// table uses the defaults.
    #[arg(long)]
    pub quick: bool,
}

/// Round trips of the two callgrind runs; the extra `2 × (N2 - N1)` switches are counted.
const CALLGRIND_N: [u64; 2] = [100_000, 200_000];

/// Criterion benchmarks read for the table: (group, bench directory).
const SWITCH_OURS: (&str, &str) = ("switch", "round_trip_greenlet");
const SWITCH_THEIRS: (&str, &str) = ("switch", "round_trip_corosensei");
const SPAWN_OURS: (&str, &str) = ("spawn", "pooled_greenlet");
const SPAWN_THEIRS: (&str, &str) = ("spawn", "reused_stack_corosensei");
const CAPTURING_OURS: (&str, &str) = ("spawn", "pooled_capturing_greenlet");
const CAPTURING_THEIRS: (&str, &str) = ("spawn", "reused_stack_capturing_corosensei");
const FRESH_OURS: (&str, &str) = ("spawn", "bypassed_pool_greenlet");
const FRESH_THEIRS: (&str, &str) = ("spawn", "fresh_stack_corosensei");

pub fn run(args: &BenchArgs) -> Result {
    let mut criterion = cmd::cargo(["bench", "-p", "greenlet", "--bench", "switch", "--"]);
    if args.quick {
        criterion.args(["--warm-up-time", "1", "--measurement-time", "2"]);
    }
    cmd::run(&mut criterion)?;

    let figures = cmd::stdout(&mut cmd::cargo([
        "bench", "-p", "greenlet", "--bench", "figures",
    ]))?;
    let figures = parse_reports(&figures);

    let callgrind = match figures_executable() {
        Ok(exe) => Some([
            Callgrind {
                ours: instructions_per(&exe, "pingpong", "ours", 2),
                theirs: instructions_per(&exe, "pingpong", "corosensei", 2),
            },
            Callgrind {
                ours: instructions_per(&exe, "spawn", "ours", 1),
                theirs: instructions_per(&exe, "spawn", "corosensei", 1),
            },
        ]),
        Err(err) => {
            eprintln!("no callgrind counts: {err}");
            None
        }
    };
    // The cost of tracing compiled in but switched off: the same ping-pong, compiled with and
    // without it (in the "ours" and "theirs" slots of the row).
    let tracing = callgrind.as_ref().map(|c| Callgrind {
        ours: c[0].ours.clone(),
        theirs: figures_no_tracing_executable()
            .map_err(|e| e.to_string())
            .and_then(|exe| instructions_per(&exe, "pingpong", "ours", 2)),
    });

    let criterion_dir = criterion_dir();
    let median = |(group, bench): (&str, &str)| -> Option<f64> {
        let path = criterion_dir
            .join(group)
            .join(bench)
            .join("new/estimates.json");
        let json = std::fs::read_to_string(&path).ok()?;
        median_of_estimates(&json)
    };

    let mut table = Table::default();
    table.row(
        "switch: ns per switch (round trip ÷ 2, criterion median)",
        median(SWITCH_OURS).map(|v| v / 2.0),
        median(SWITCH_THEIRS).map(|v| v / 2.0),
        2,
    );
    table.callgrind_row(
        "switch: instructions per switch (callgrind)",
        callgrind.as_ref().map(|c| &c[0]),
    );
    table.callgrind_row(
        "tracing compiled in but off: instructions per switch (callgrind); this row only, the \
         second column is ours with tracing compiled out (`--cfg greenlet_no_tracing`) and the \
         ratio is in ÷ out",
        tracing.as_ref(),
    );
    table.row(
        "spawn + first switch + finish + drop, ns: stack pool (corosensei: stack reused by hand)",
        median(SPAWN_OURS),
        median(SPAWN_THEIRS),
        1,
    );
    table.callgrind_row(
        "spawn + first switch + finish + drop with the pool: instructions (callgrind)",
        callgrind.as_ref().map(|c| &c[1]),
    );
    table.row(
        "same, ns, with a closure capturing 32 bytes (a handle or `Rc` and three words)",
        median(CAPTURING_OURS),
        median(CAPTURING_THEIRS),
        1,
    );
    table.row(
        "spawn + first switch + finish + drop, ns: past the hot pool (ours: a free slot of a \
         chunk; corosensei: fresh stack, mmap + mprotect + munmap)",
        median(FRESH_OURS),
        median(FRESH_THEIRS),
        0,
    );
    table.figure_row(
        &figures,
        "spawn + first switch on a never-used 16 KiB stack, µs (mean over 30,000 kept alive: \
         guard installed and pages faulted in; corosensei: mmap + mprotect)",
        "density.30000",
        "us_each",
        2,
    );
    for n in ["100000", "30000"] {
        let label = group_thousands(n);
        table.figure_row(
            &figures,
            &format!("chain of {label} (16 KiB stacks): total ms (median of 5)"),
            &format!("chain.{n}"),
            "ms",
            1,
        );
        table.figure_row(
            &figures,
            &format!("chain of {label}: peak RSS, MiB (VmHWM)"),
            &format!("chain.{n}"),
            "peak_mib",
            1,
        );
    }
    table.figure_row(
        &figures,
        "density: suspended greenlets alive at once (16 KiB stacks, each guarded; stop at 1,000,000)",
        "density.1000000",
        "n",
        0,
    );
    table.figure_row(
        &figures,
        "density: RSS per suspended greenlet, KiB",
        "density.1000000",
        "kib_each",
        2,
    );
    table.figure_row(
        &figures,
        "density: memory mappings added",
        "density.1000000",
        "maps",
        0,
    );
    println!();
    print!("{}", table.render());
    Ok(())
}

/// Where criterion writes its results: `$CRITERION_HOME`, else `criterion` in the cargo
/// target directory.
fn criterion_dir() -> std::path::PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return cmd::workspace_root().join(home);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into());
    cmd::workspace_root().join(target).join("criterion")
}

/// Instruction counts per switch, or why there is none.
struct Callgrind {
    ours: std::result::Result<f64, String>,
    theirs: std::result::Result<f64, String>,
}

/// `@@key=value` lines, by key.
fn parse_reports(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter_map(|l| l.strip_prefix("@@")?.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The `median.point_estimate` of a criterion `estimates.json` (nanoseconds per iteration).
fn median_of_estimates(json: &str) -> Option<f64> {
    let median = &json[json.find("\"median\"")?..];
    let value = &median[median.find("\"point_estimate\":")? + "\"point_estimate\":".len()..];
    let end = value
        .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
        .unwrap_or(value.len());
    value[..end].parse().ok()
}

/// Path of the figures bench binary, built if need be.
fn figures_executable() -> Result<String> {
    build_figures(&mut figures_build())
}

/// Path of the figures bench binary with tracing compiled out (`--cfg greenlet_no_tracing`,
/// see `engine/src/thread.rs`), built if need be in a target directory of its own so that the
/// flag does not invalidate the ordinary build.
fn figures_no_tracing_executable() -> Result<String> {
    let target = std::path::PathBuf::from(
        std::env::var_os("CARGO_TARGET_DIR").unwrap_or_else(|| "target".into()),
    );
    let mut build = figures_build();
    build.env("RUSTFLAGS", "--cfg greenlet_no_tracing").env(
        "CARGO_TARGET_DIR",
        cmd::workspace_root().join(target).join("no-tracing"),
    );
    build_figures(&mut build)
}

fn figures_build() -> Command {
    cmd::cargo([
        "bench",
        "-p",
        "greenlet",
        "--bench",
        "figures",
        "--no-run",
        "--message-format=json",
    ])
}

fn build_figures(build: &mut Command) -> Result<String> {
    let out = cmd::stdout(build)?;
    executable_of(&out, "figures").ok_or_else(|| "cargo did not report the figures binary".into())
}

/// The `"executable"` of the compiler-artifact message of target `name` in cargo's JSON
/// messages (one object per line; paths have no escaped quotes on Linux).
fn executable_of(messages: &str, name: &str) -> Option<String> {
    let target = format!("\"name\":\"{name}\"");
    messages
        .lines()
        .filter(|l| l.contains("\"reason\":\"compiler-artifact\"") && l.contains(&target))
        .find_map(|l| {
            let at = l.find("\"executable\":\"")? + "\"executable\":\"".len();
            let end = l[at..].find('"')?;
            Some(l[at..at + end].to_owned())
        })
}

/// Instructions per operation of `lib` in figures mode `mode` (`pingpong`: a round trip is
/// two switches; `spawn`: one spawn), from two callgrind runs.
fn instructions_per(
    exe: &str,
    mode: &str,
    lib: &str,
    ops_per_iteration: u64,
) -> std::result::Result<f64, String> {
    let mut counts = Vec::new();
    for n in CALLGRIND_N {
        let mut c = Command::new("valgrind");
        c.args(["--tool=callgrind", "--callgrind-out-file=/dev/null", exe])
            .args([mode, lib, &n.to_string()]);
        println!("$ {}", cmd::display(&c));
        let out = c
            .output()
            .map_err(|e| format!("valgrind: {e} (is it installed?)"))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            return Err(format!("valgrind failed ({})", out.status));
        }
        counts.push(collected(&stderr).ok_or("no instruction count in valgrind's output")?);
    }
    let extra = ops_per_iteration * (CALLGRIND_N[1] - CALLGRIND_N[0]);
    Ok((counts[1] as f64 - counts[0] as f64) / extra as f64)
}

/// The total of callgrind's `==pid== Collected : N` line.
fn collected(stderr: &str) -> Option<u64> {
    stderr.lines().find_map(|l| {
        let rest = &l[l.find("Collected :")? + "Collected :".len()..];
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn ratio(ours: Option<&f64>, theirs: Option<&f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if *b != 0.0 => format!("{:.2}", a / b),
        _ => "—".into(),
    }
}

/// "100000" → "100,000".
fn group_thousands(digits: &str) -> String {
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number for the table: thousands grouped when it has no decimals.
fn number(v: f64, decimals: usize) -> String {
    if decimals == 0 {
        group_thousands(&format!("{v:.0}"))
    } else {
        format!("{v:.decimals$}")
    }
}

/// What a figures child reported for `prefix.lib.key`: the number, or its error.
fn figure(figures: &BTreeMap<String, String>, prefix: &str, lib: &str, key: &str) -> Figure {
    if let Some(v) = figures
        .get(&format!("{prefix}.{lib}.{key}"))
        .and_then(|v| v.parse::<f64>().ok())
    {
        return Figure::Value(v);
    }
    match figures.get(&format!("{prefix}.{lib}.error")) {
        Some(e) => Figure::Failed(short_error(e)),
        None => Figure::Missing,
    }
}

enum Figure {
    Value(f64),
    Failed(String),
    Missing,
}

/// "coroutine 32752: Cannot allocate memory (os error 12)" → "fails at #32,752 (ENOMEM)".
fn short_error(e: &str) -> String {
    let errno = if e.contains("os error 12") {
        "ENOMEM".to_owned()
    } else {
        e.to_owned()
    };
    let at = e
        .split(':')
        .next()
        .and_then(|head| head.split_whitespace().last())
        .filter(|n| n.chars().all(|c| c.is_ascii_digit()));
    match at {
        Some(n) => format!("fails at #{} ({errno})", group_thousands(n)),
        None => format!("fails ({errno})"),
    }
}

#[derive(Default)]
struct Table {
    rows: Vec<[String; 4]>,
}

impl Table {
    fn row(&mut self, name: &str, ours: Option<f64>, theirs: Option<f64>, decimals: usize) {
        let show = |v: Option<f64>| v.map_or_else(|| "n/a".to_owned(), |v| number(v, decimals));
        self.row_text(
            name,
            show(ours),
            show(theirs),
            ratio(ours.as_ref(), theirs.as_ref()),
        );
    }

    fn callgrind_row(&mut self, name: &str, counts: Option<&Callgrind>) {
        let show = |r: &std::result::Result<f64, String>| match r {
            Ok(v) => format!("{v:.1}"),
            Err(e) => e.clone(),
        };
        match counts {
            Some(c) => self.row_text(
                name,
                show(&c.ours),
                show(&c.theirs),
                ratio(c.ours.as_ref().ok(), c.theirs.as_ref().ok()),
            ),
            None => self.row_text(name, "n/a".into(), "n/a".into(), "—".into()),
        }
    }

    fn row_text(&mut self, name: &str, ours: String, theirs: String, ratio: String) {
        self.rows.push([name.to_owned(), ours, theirs, ratio]);
    }

    fn figure_row(
        &mut self,
        figures: &BTreeMap<String, String>,
        name: &str,
        prefix: &str,
        key: &str,
        decimals: usize,
    ) {
        let show = |f: &Figure| match f {
            Figure::Value(v) => number(*v, decimals),
            Figure::Failed(e) => e.clone(),
            Figure::Missing => "n/a".to_owned(),
        };
        let ours = figure(figures, prefix, "ours", key);
        let theirs = figure(figures, prefix, "corosensei", key);
        let r = match (&ours, &theirs) {
            (Figure::Value(a), Figure::Value(b)) => ratio(Some(a), Some(b)),
            _ => "—".into(),
        };
        self.row_text(name, show(&ours), show(&theirs), r);
    }

    fn render(&self) -> String {
        let mut out = String::from("| figure | ours | corosensei | ratio (ours ÷ corosensei) |\n");
        out.push_str("|---|---:|---:|---:|\n");
        for [a, b, c, d] in &self.rows {
            out.push_str(&format!("| {a} | {b} | {c} | {d} |\n"));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_median_not_the_mean() {
        let json = r#"{"mean":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.49,"upper_bound":1.50},"point_estimate":1.502,"standard_error":0.003},"median":{"confidence_interval":{"confidence_level":0.95,"lower_bound":1.48,"upper_bound":1.489},"point_estimate":1.4856585286499069,"standard_error":0.0016}}"#;
        assert_eq!(median_of_estimates(json), Some(1.4856585286499069));
        assert_eq!(median_of_estimates("{}"), None);
    }

    #[test]
    fn finds_the_bench_executable_in_cargo_messages() {
        let msgs = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"greenlet"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["bench"],"name":"figures"},"executable":"/w/target/release/deps/figures-abc"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executable_of(msgs, "figures").as_deref(),
            Some("/w/target/release/deps/figures-abc")
        );
        assert_eq!(executable_of(msgs, "switch"), None);
    }

    #[test]
    fn reads_callgrinds_total() {
        let err = "==10178== Events    : Ir\n==10178== Collected : 8592990\n==10178==\n";
        assert_eq!(collected(err), Some(8_592_990));
    }

    #[test]
    fn reports_and_errors_read_back() {
        let out = "noise\n@@chain.100000.ours.ms=386.47\n@@chain.100000.corosensei.error=coroutine 32752: Cannot allocate memory (os error 12)\n";
        let f = parse_reports(out);
        assert!(matches!(
            figure(&f, "chain.100000", "ours", "ms"),
            Figure::Value(v) if v == 386.47
        ));
        match figure(&f, "chain.100000", "corosensei", "ms") {
            Figure::Failed(e) => assert_eq!(e, "fails at #32,752 (ENOMEM)"),
            _ => panic!("expected the failure"),
        }
        assert!(matches!(
            figure(&f, "density.1", "ours", "n"),
            Figure::Missing
        ));
    }

    #[test]
    fn numbers_group_thousands() {
        assert_eq!(group_thousands("1000000"), "1,000,000");
        assert_eq!(group_thousands("32751"), "32,751");
        assert_eq!(group_thousands("999"), "999");
        assert_eq!(number(4.148, 2), "4.15");
    }
}
