//! Idempotent machine setup: the rustup components, rustup targets and Debian
//! packages that the CI steps need.
//!
//! Each list is a `const` so that work needing something new only appends an
//! entry, with the reason it is needed; that reason is printed when the item is
//! installed and tells a later reader when an entry has become stale.
//! Everything is checked before anything is installed, so a ready machine
//! pays only for a few quick queries and never touches the network.

use std::process::Command;

use crate::{Result, cmd};

/// Something the checks need installed, and why.
#[derive(Clone, Copy, Debug)]
pub struct Requirement {
    /// Name as the installer knows it: rustup component, target triple or
    /// Debian package.
    pub name: &'static str,
    /// Which step needs it and for what; shown when it gets installed.
    pub reason: &'static str,
}

impl Requirement {
    /// Lets the lists below stay one readable line per entry.
    pub const fn new(name: &'static str, reason: &'static str) -> Self {
        Self { name, reason }
    }
}

/// Rustup components for the active toolchain.
pub const RUSTUP_COMPONENTS: &[Requirement] = &[
    Requirement::new("rustfmt", "ci step `fmt` (cargo fmt --check)"),
    Requirement::new("clippy", "ci step `clippy` (cargo clippy -D warnings)"),
];

/// Rustup targets besides the host, which every toolchain already has.
pub const RUSTUP_TARGETS: &[Requirement] = &[
    Requirement::new(
        "aarch64-unknown-linux-gnu",
        "ci step `aarch64` (standard library for the cross-compiled engine tests)",
    ),
    Requirement::new(
        "aarch64-apple-darwin",
        "ci step `debugging` (the engine's assembly must build for macOS on Apple silicon)",
    ),
    Requirement::new(
        "x86_64-apple-darwin",
        "ci step `debugging` (the engine's assembly must build for macOS on Intel)",
    ),
    Requirement::new(
        "wasm32-unknown-unknown",
        "`cargo xtask web`, ci steps `web` (the visualizer's web page), `test` and `wasm` \
         (the conformance harness builds the engine as a wasm guest)",
    ),
];

/// Rustup components of the nightly toolchain, installed with it when it is missing.
pub const NIGHTLY_COMPONENTS: &[Requirement] = &[Requirement::new(
    "rust-src",
    "ci steps `test` and `wasm` (the panic=unwind wasm guest rebuilds std with -Zbuild-std)",
)];

/// Debian packages, installed with apt-get.
pub const APT_PACKAGES: &[Requirement] = &[
    Requirement::new(
        "gcc-aarch64-linux-gnu",
        "ci step `aarch64` (linker for aarch64-unknown-linux-gnu, see .cargo/config.toml)",
    ),
    Requirement::new(
        "libc6-dev-arm64-cross",
        "ci step `aarch64` (aarch64 glibc to link against; only a Recommends of the linker, \
         which --no-install-recommends skips)",
    ),
    Requirement::new(
        "qemu-user",
        "ci step `aarch64` (qemu-aarch64 runs the aarch64 test binaries, see .cargo/config.toml)",
    ),
    Requirement::new(
        "gdb",
        "ci step `test` (engine/tests/unwinding.rs runs `bt` inside a greenlet)",
    ),
    Requirement::new(
        "valgrind",
        "`cargo xtask bench` (callgrind counts instructions per switch) and ci step `valgrind` \\
         (memcheck over the engine's semantics, model and drop tests)",
    ),
    Requirement::new(
        "xvfb",
        "ci step `visualizer` (xvfb-run: an X server for the real window's screenshot)",
    ),
    Requirement::new(
        "xauth",
        "ci step `visualizer` (xvfb-run hands the window its X authority with xauth)",
    ),
    Requirement::new(
        "libxkbcommon-x11-0",
        "`cargo xtask run`, ci step `visualizer` (keyboard on X11; winit dlopens it)",
    ),
    Requirement::new(
        "libxcursor1",
        "`cargo xtask run`, ci step `visualizer` (mouse cursors on X11; winit dlopens it)",
    ),
    Requirement::new(
        "libxi6",
        "`cargo xtask run`, ci step `visualizer` (X input extension; winit dlopens it)",
    ),
    Requirement::new(
        "libgl1",
        "`cargo xtask run`, ci step `visualizer` (OpenGL loader for wgpu's GL fallback)",
    ),
    Requirement::new(
        "libegl1",
        "`cargo xtask run`, ci step `visualizer` (EGL loader for wgpu's GL fallback)",
    ),
    Requirement::new(
        "libgl1-mesa-dri",
        "`cargo xtask run`, ci step `visualizer` (Mesa GL drivers: llvmpipe without a GPU)",
    ),
    Requirement::new(
        "mesa-vulkan-drivers",
        "`cargo xtask run`, ci step `visualizer` (Mesa Vulkan drivers: lavapipe renders \
         the window and the headless --screenshot without a GPU)",
    ),
    Requirement::new(
        "libvulkan1",
        "`cargo xtask run`, ci step `visualizer` (the Vulkan loader; wgpu dlopens it)",
    ),
    Requirement::new(
        "chromium",
        "ci step `web` (headless browser that loads and drives the web page)",
    ),
];

/// The entries of [`APT_PACKAGES`] the visualizer's window needs at run time: what
/// `cargo xtask run` installs on a machine that lacks them (Xvfb is only for CI).
pub const VISUALIZER_RUNTIME: [&str; 8] = [
    "libxkbcommon-x11-0",
    "libxcursor1",
    "libxi6",
    "libgl1",
    "libegl1",
    "libgl1-mesa-dri",
    "mesa-vulkan-drivers",
    "libvulkan1",
];

/// Lets apt-get wait for another apt or dpkg run (e.g. unattended upgrades on
/// a freshly booted machine) instead of failing at once on its lock.
const APT_LOCK_TIMEOUT: [&str; 2] = ["-o", "DPkg::Lock::Timeout=900"];

/// Ensures every requirement is installed, installing only what is missing.
pub fn run() -> Result {
    let targets = installed_targets()?;
    ensure_targets(&targets)?;
    ensure_components(&targets)?;
    ensure_nightly()?;
    ensure_apt_packages()
}

/// The nightly toolchain (minimal profile) with [`NIGHTLY_COMPONENTS`].
fn ensure_nightly() -> Result {
    let toolchains = cmd::stdout(Command::new("rustup").args(["toolchain", "list"]))?;
    if !toolchains.lines().any(|l| l.starts_with("nightly-")) {
        report_missing(
            "rustup toolchain",
            &[&Requirement::new("nightly", NIGHTLY_COMPONENTS[0].reason)],
        );
        let mut install = Command::new("rustup");
        install.args(["toolchain", "install", "nightly", "--profile", "minimal"]);
        for c in NIGHTLY_COMPONENTS {
            install.args(["--component", c.name]);
        }
        return cmd::run(&mut install);
    }
    let listing =
        cmd::stdout(Command::new("rustup").args(["+nightly", "component", "list", "--installed"]))?;
    let missing: Vec<&Requirement> = NIGHTLY_COMPONENTS
        .iter()
        .filter(|c| !component_installed(&listing, &[], c.name))
        .collect();
    if missing.is_empty() {
        println!(
            "nightly toolchain: present, with its {} required components",
            NIGHTLY_COMPONENTS.len()
        );
        return Ok(());
    }
    report_missing("nightly rustup component", &missing);
    cmd::run(
        Command::new("rustup")
            .args(["+nightly", "component", "add"])
            .args(missing.iter().map(|r| r.name)),
    )
}

fn installed_targets() -> Result<Vec<String>> {
    let listing = cmd::stdout(Command::new("rustup").args(["target", "list", "--installed"]))?;
    Ok(listing.lines().map(str::trim).map(str::to_owned).collect())
}

fn ensure_targets(installed: &[String]) -> Result {
    let missing: Vec<&Requirement> = RUSTUP_TARGETS
        .iter()
        .filter(|target| !installed.iter().any(|have| have == target.name))
        .collect();
    install_with_rustup("target", RUSTUP_TARGETS.len(), &missing)
}

fn ensure_components(installed_targets: &[String]) -> Result {
    let listing = cmd::stdout(Command::new("rustup").args(["component", "list", "--installed"]))?;
    let targets: Vec<&str> = installed_targets.iter().map(String::as_str).collect();
    let missing: Vec<&Requirement> = RUSTUP_COMPONENTS
        .iter()
        .filter(|component| !component_installed(&listing, &targets, component.name))
        .collect();
    install_with_rustup("component", RUSTUP_COMPONENTS.len(), &missing)
}

/// Runs `rustup <kind> add` for the missing items, or reports that none are.
fn install_with_rustup(kind: &str, required: usize, missing: &[&Requirement]) -> Result {
    if missing.is_empty() {
        println!("rustup {kind}s: all {required} required present");
        return Ok(());
    }
    report_missing(&format!("rustup {kind}"), missing);
    cmd::run(
        Command::new("rustup")
            .args([kind, "add"])
            .args(missing.iter().map(|r| r.name)),
    )
}

/// Whether `name` appears in `rustup component list --installed` output.
///
/// Rustup lists target-specific components as `<name>-<target triple>`
/// (`rustfmt-x86_64-unknown-linux-gnu`) and others bare (`rust-src`). The
/// suffix is matched against the installed targets rather than any `-…`
/// so that `rust` is not mistaken for `rust-docs-<triple>`.
fn component_installed(listing: &str, installed_targets: &[&str], name: &str) -> bool {
    listing.lines().map(str::trim).any(|entry| {
        entry == name
            || entry
                .strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|triple| installed_targets.contains(&triple))
    })
}

fn ensure_apt_packages() -> Result {
    let all: Vec<&Requirement> = APT_PACKAGES.iter().collect();
    ensure_apt(&all)
}

/// Installs the visualizer's run-time packages ([`VISUALIZER_RUNTIME`]) that are missing.
pub fn ensure_visualizer_runtime() -> Result {
    let needed: Vec<&Requirement> = APT_PACKAGES
        .iter()
        .filter(|r| VISUALIZER_RUNTIME.contains(&r.name))
        .collect();
    ensure_apt(&needed)
}

/// Installs the `wasm32-unknown-unknown` target if missing (`cargo xtask web` on a machine
/// where `setup` never ran).
pub fn ensure_web_target() -> Result {
    let installed = installed_targets()?;
    let missing: Vec<&Requirement> = RUSTUP_TARGETS
        .iter()
        .filter(|t| t.name == "wasm32-unknown-unknown" && !installed.iter().any(|h| h == t.name))
        .collect();
    install_with_rustup("target", 1, &missing)
}

/// Installs Debian's `chromium` if missing (the browser ci step `web` drives).
pub fn ensure_browser() -> Result {
    let needed: Vec<&Requirement> = APT_PACKAGES
        .iter()
        .filter(|r| r.name == "chromium")
        .collect();
    ensure_apt(&needed)
}

/// Installs whichever of `required` are missing (as root), or says how to.
fn ensure_apt(required: &[&Requirement]) -> Result {
    // Nothing to check means no dpkg-query either, so `setup` also works on
    // non-Debian developer machines until a package is actually needed.
    if required.is_empty() {
        return Ok(());
    }
    let mut missing = Vec::new();
    for &package in required {
        if !apt_package_installed(package.name)? {
            missing.push(package);
        }
    }
    if missing.is_empty() {
        println!("apt packages: all {} required present", required.len());
        return Ok(());
    }
    report_missing("apt package", &missing);
    let names: Vec<&str> = missing.iter().map(|r| r.name).collect();
    let mut update = Command::new("apt-get");
    update.arg("update").args(APT_LOCK_TIMEOUT);
    let mut install = Command::new("apt-get");
    install
        .args(["install", "-y", "--no-install-recommends"])
        .args(APT_LOCK_TIMEOUT)
        .args(&names)
        .env("DEBIAN_FRONTEND", "noninteractive");

    if !running_as_root()? {
        return Err(format!(
            "missing apt packages: {}\nrun as root, then retry:\n  sudo {} && sudo {}",
            names.join(" "),
            cmd::display(&update),
            cmd::display(&install),
        )
        .into());
    }
    // A fresh machine has no package lists, so install would find nothing.
    cmd::run(&mut update)?;
    cmd::run(&mut install)
}

fn apt_package_installed(name: &str) -> Result<bool> {
    let output = cmd::probe(Command::new("dpkg-query").args(["-W", "-f=${Status}", name]))
        .map_err(|err| {
            format!("could not run dpkg-query to check apt package {name}: {err} (is this Debian?)")
        })?;
    // dpkg-query exits non-zero for a package it has never heard of.
    Ok(output.status.success() && dpkg_status_installed(&String::from_utf8_lossy(&output.stdout)))
}

/// Whether a dpkg `${Status}` field ("want error-flag status") says the
/// package is installed; e.g. a removed package keeps its entry as
/// `deinstall ok config-files`, which is not installed.
fn dpkg_status_installed(status: &str) -> bool {
    status.split_whitespace().nth(2) == Some("installed")
}

fn report_missing(kind: &str, missing: &[&Requirement]) {
    for requirement in missing {
        println!(
            "missing {kind} {}: needed by {}",
            requirement.name, requirement.reason
        );
    }
}

/// Whether this process may run apt-get itself.
fn running_as_root() -> Result<bool> {
    if let Some(uid) = std::fs::read_to_string("/proc/self/status")
        .ok()
        .as_deref()
        .and_then(effective_uid)
    {
        return Ok(uid == 0);
    }
    // No /proc (e.g. some containers): ask `id` instead of linking libc.
    let uid = cmd::stdout(Command::new("id").arg("-u"))?;
    Ok(uid.trim() == "0")
}

/// Effective uid from the text of `/proc/self/status`, whose `Uid:` line
/// lists the real, effective, saved and filesystem uids.
fn effective_uid(proc_status: &str) -> Option<u32> {
    proc_status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const COMPONENTS: &str = "\
cargo-x86_64-unknown-linux-gnu
clippy-x86_64-unknown-linux-gnu
rust-docs-x86_64-unknown-linux-gnu
rust-src
rust-std-aarch64-unknown-linux-gnu
rust-std-x86_64-unknown-linux-gnu
rustc-x86_64-unknown-linux-gnu
";
    const TARGETS: &[&str] = &["aarch64-unknown-linux-gnu", "x86_64-unknown-linux-gnu"];

    #[test]
    fn finds_target_specific_and_bare_components() {
        assert!(component_installed(COMPONENTS, TARGETS, "clippy"));
        assert!(component_installed(COMPONENTS, TARGETS, "rust-src"));
        assert!(component_installed(COMPONENTS, TARGETS, "rust-std"));
        assert!(!component_installed(COMPONENTS, TARGETS, "rustfmt"));
    }

    #[test]
    fn component_prefix_of_another_is_not_installed() {
        assert!(!component_installed(COMPONENTS, TARGETS, "rust"));
        assert!(!component_installed(
            COMPONENTS,
            TARGETS,
            "rust-docs-x86_64"
        ));
    }

    #[test]
    fn dpkg_status_only_counts_installed_packages() {
        assert!(dpkg_status_installed("install ok installed"));
        assert!(dpkg_status_installed("hold ok installed"));
        assert!(!dpkg_status_installed("deinstall ok config-files"));
        assert!(!dpkg_status_installed("unknown ok not-installed"));
        assert!(!dpkg_status_installed("install reinstreq half-installed"));
        assert!(!dpkg_status_installed(""));
    }

    #[test]
    fn effective_uid_is_the_second_uid_field() {
        let status = "Name:\tcat\nUmask:\t0022\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";
        assert_eq!(effective_uid(status), Some(0));
        assert_eq!(effective_uid("Uid:\t0\t1000\t0\t0\n"), Some(1000));
        assert_eq!(effective_uid("Name:\tcat\n"), None);
    }

    #[test]
    fn the_visualizer_runtime_is_part_of_the_apt_packages() {
        for name in VISUALIZER_RUNTIME {
            assert!(
                APT_PACKAGES.iter().any(|r| r.name == name),
                "{name} is not in APT_PACKAGES"
            );
        }
    }

    #[test]
    fn requirement_names_are_unique_and_trimmed() {
        for list in [
            RUSTUP_COMPONENTS,
            RUSTUP_TARGETS,
            NIGHTLY_COMPONENTS,
            APT_PACKAGES,
        ] {
            for (i, requirement) in list.iter().enumerate() {
                assert_eq!(requirement.name, requirement.name.trim());
                assert!(!requirement.reason.is_empty(), "{}", requirement.name);
                assert!(
                    !list[..i].iter().any(|r| r.name == requirement.name),
                    "duplicate requirement {}",
                    requirement.name
                );
            }
        }
    }
}
