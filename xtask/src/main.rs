//! Project automation, run as `cargo xtask <command>` (the alias lives in
//! `.cargo/config.toml`).
//!
//! Everything CI does goes through `cargo xtask ci`, so a developer can
//! reproduce a CI run locally with one command and CI scripts stay trivial.
//! The only dependency is `clap`: this crate is compiled before anything else
//! on a fresh machine, so every extra crate delays the first check.

mod asan;
mod bench;
mod ci;
mod cmd;
mod debugging;
mod job;
mod setup;
mod valgrind;
mod visualizer;
mod wasm;
mod web;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Result type shared by every task.
///
/// Tasks only ever report what went wrong and stop, so a boxed error carrying
/// a message is all the structure needed.
pub type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Command line of `cargo xtask`.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about = "Project automation: CI checks, benchmarks, machine setup and the main job"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The tasks `cargo xtask` can run.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the benchmarks (greenlet beside corosensei) and print one table.
    Bench(bench::BenchArgs),
    /// Run every check and test, exactly as CI does (fail-fast, timed).
    Ci(ci::CiArgs),
    /// Run the main job: the visualizer (release build), installing what its window needs.
    Run,
    /// Install whatever rustup components, targets and apt packages are missing.
    Setup,
    /// Build the visualizer's web page into web/dist (wasm32, recorded lessons).
    Web,
    /// Serve web/dist on 127.0.0.1 (build it first with `cargo xtask web`).
    Serve {
        /// The port to listen on.
        #[arg(long, default_value_t = 8080)]
        port: u16,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => bench::run(&args),
        Command::Ci(args) => ci::run(&args),
        Command::Run => job::run(),
        Command::Setup => setup::run(),
        Command::Web => web::build(),
        Command::Serve { port } => web::serve(port),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    /// Catches clap definition mistakes (duplicate flags, bad defaults) at
    /// test time instead of the first time someone runs the command.
    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn only_is_repeatable() {
        let cli = Cli::try_parse_from([
            "xtask",
            "ci",
            "--skip-setup",
            "--only",
            "fmt",
            "--only",
            "examples",
        ])
        .expect("valid command line");
        let Command::Ci(args) = cli.command else {
            panic!("expected the ci subcommand");
        };
        assert!(args.skip_setup);
        assert_eq!(args.only, [ci::Step::Fmt, ci::Step::Examples]);
    }

    /// Setup is controlled by `--skip-setup`, not `--only`, so it must not be
    /// accepted as an `--only` value.
    #[test]
    fn setup_is_not_an_only_value() {
        assert!(Cli::try_parse_from(["xtask", "ci", "--only", "setup"]).is_err());
    }
}
