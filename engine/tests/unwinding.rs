//! Backtraces, panics and debuggers cross greenlet stacks: from a greenlet's frames into those
//! of the context that last switched into it, down to `main` (see `asm/*/trampoline.s`).

mod common;

use std::path::PathBuf;
use std::process::Output;

use greenlet::Greenlet;

#[inline(never)]
fn inner_frame() -> String {
    std::backtrace::Backtrace::force_capture().to_string()
}

#[inline(never)]
fn outer_frame(inner: &Greenlet) -> String {
    inner.switch(()).take()
}

/// Checks that `text` has a line containing each needle, in this order (each one found after
/// the line of the one before).
fn assert_in_order(text: &str, needles: &[&str]) {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    for n in needles {
        match lines[from..].iter().position(|l| l.contains(n)) {
            Some(i) => from += i + 1,
            None => panic!("{n:?} not found after line {from} (needles {needles:?}):\n{text}"),
        }
    }
}

#[test]
fn std_backtrace_in_a_nested_greenlet_crosses_into_each_switcher() {
    let inner = Greenlet::new(|_| inner_frame());
    let outer = Greenlet::new(move |_| outer_frame(&inner));
    let bt: String = outer.switch(()).take();
    assert_in_order(
        &bt,
        &[
            "inner_frame",
            "trampoline",
            "outer_frame",
            "trampoline",
            "std_backtrace_in_a_nested_greenlet_crosses_into_each_switcher",
            "run_test",
        ],
    );
}

/// The `debugging` example, which cargo builds next to this test binary.
fn example() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join("examples").join("debugging");
    assert!(
        path.exists(),
        "{} is missing: run the whole `cargo test -p greenlet` (it builds the examples)",
        path.display()
    );
    path
}

fn run_example(args: &[&str], env: &[(&str, &str)]) -> Output {
    common::command_for(&example())
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

#[test]
fn backtrace_reaches_main_with_stacks_above_and_below_their_switcher() {
    for placement in ["below", "above"] {
        let out = run_example(&["backtrace", placement], &[]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("inner stack ("), "{text}");
        assert!(text.lines().next().unwrap().contains(placement), "{text}");
        assert_in_order(
            &text,
            &[
                "inner_frame",
                "trampoline",
                "outer_frame",
                "trampoline",
                "main",
                "lang_start",
            ],
        );
    }
}

#[test]
fn a_panic_in_a_nested_greenlet_prints_a_backtrace_across_stacks() {
    let out = run_example(&["panic", "below"], &[("RUST_BACKTRACE", "1")]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("boom in the inner greenlet"), "{text}");
    assert_in_order(&text, &["inner_frame", "trampoline", "outer_frame"]);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn gdb_bt_inside_a_greenlet_reaches_main() {
    if std::env::var_os("GREENLET_TEST_RUNNER").is_some() {
        return; // emulated: gdb would debug qemu, not the program
    }
    let gdb = std::process::Command::new("gdb").arg("--version").output();
    assert!(
        gdb.is_ok_and(|o| o.status.success()),
        "gdb is required (installed by `cargo xtask setup`)"
    );
    for placement in ["below", "above"] {
        let out = std::process::Command::new("gdb")
            .args([
                "-nx",
                "-batch",
                "-ex",
                "set debuginfod enabled off",
                "-ex",
                "run",
                "-ex",
                "bt",
            ])
            .arg("--args")
            .arg(example())
            .args(["gdb", placement])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("SIGTRAP"), "{text}");
        assert!(!text.contains("inner to this frame"), "{placement}: {text}");
        assert!(!text.contains("Backtrace stopped"), "{placement}: {text}");
        assert_in_order(
            &text,
            &["breakpoint_here", "inner_frame", "outer_frame", "main ()"],
        );
    }
}
