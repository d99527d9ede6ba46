//! `greenlet-visualizer`: opens the window, or renders one frame with `--screenshot`.

use std::process::ExitCode;

use clap::Parser;
use greenlet_visualizer::cli::Cli;
use greenlet_visualizer::{App, Origin, lessons, native, screenshot, synthetic};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.list_lessons {
        for lesson in &lessons::ALL {
            println!("{:<10} {}", lesson.id, lesson.title);
        }
        return ExitCode::SUCCESS;
    }

    let mut app = App::new();
    if let Some(path) = &cli.trace {
        app.load_path(path);
    } else if let Some(n) = cli.synthetic {
        app.load_trace(
            synthetic::trace(n, 4),
            Origin::Memory(format!("synthetic trace of {n} events")),
        );
    } else {
        let id = cli.lesson.as_deref().unwrap_or("seed");
        if lessons::find(id).is_none() {
            eprintln!(
                "error: there is no lesson {id:?}; the lessons are {}",
                lessons::ids()
            );
            return ExitCode::from(2);
        }
        app.load_lesson(id);
    }
    if let Some(step) = cli.step {
        let count = app.event_count();
        if step >= count && count > 0 {
            eprintln!(
                "error: --step {step} is past the end: the trace has {count} events (0 to {})",
                count - 1
            );
            return ExitCode::from(2);
        }
        app.go_to(step);
    }

    if let Some(out) = &cli.export {
        return match app.trace() {
            Some(trace) => match trace.write(out) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: could not write {}: {e}", out.display());
                    ExitCode::FAILURE
                }
            },
            None => {
                eprintln!("error: {}", app.error().unwrap_or("no trace is loaded"));
                ExitCode::FAILURE
            }
        };
    }

    match &cli.screenshot {
        Some(png) => {
            // A trace that could not be read is still drawn (the window shows the error), but
            // the exit status says the picture is not of the trace asked for.
            let error = app.error().map(str::to_owned);
            if let Err(e) = screenshot::capture(app, cli.size, png) {
                eprintln!("error: could not render the screenshot: {e}");
                return ExitCode::FAILURE;
            }
            match error {
                Some(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        None => match native::run(app, cli.size, cli.window_screenshot.clone()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
