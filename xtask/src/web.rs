//! The visualizer on the web: `cargo xtask web` builds the page into `web/dist/`, `cargo xtask
//! serve` serves it, and ci step `web` drives it in headless Chromium.
//!
//! The build:
//! 1. the `wasm32-unknown-unknown` target, and `wasm-bindgen-cli` at exactly the
//!    `wasm-bindgen` version in `Cargo.lock` (the CLI refuses a `.wasm` made by another
//!    version), installed once under `target/tools/` so a CI run that keeps `target/` never
//!    pays for it twice;
//! 2. the lessons, recorded by the native visualizer on real greenlets
//!    (`greenlet-visualizer --lesson ID --export FILE`) into `web/dist/lessons/`: the browser
//!    cannot run native greenlets, so the page shows these recordings;
//! 3. the visualizer's library as a `cdylib` for wasm32 in profile `web` (size-optimised, see
//!    the workspace `Cargo.toml`), then `wasm-bindgen --target web`;
//! 4. the page itself (`web/index.html`, `loader.js`, `style.css`).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::{Result, cmd, setup};

/// The page's own files in `web/`, copied beside the wasm.
const PAGE_FILES: [&str; 3] = ["index.html", "loader.js", "style.css"];
/// The crate's library name, which names the `.wasm` and wasm-bindgen's output.
const LIB_NAME: &str = "greenlet_visualizer";

/// `$CARGO_TARGET_DIR`, or the workspace's `target/`.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::workspace_root().join("target"))
}

/// Where the page is built.
pub fn dist_dir() -> PathBuf {
    cmd::workspace_root().join("web").join("dist")
}

/// `cargo xtask web`: builds the page into `web/dist/`.
pub fn build() -> Result {
    let start = Instant::now();
    setup::ensure_web_target()?;
    let bindgen = ensure_wasm_bindgen()?;
    let dist = dist_dir();
    std::fs::create_dir_all(dist.join("lessons"))?;
    record_lessons(&dist.join("lessons"))?;

    // `cargo rustc --crate-type cdylib` rather than a `cdylib` in the crate's manifest: the
    // native builds (tests, the desktop binary) would otherwise link a shared library they
    // never use.
    cmd::run(&mut cmd::cargo([
        "rustc",
        "-p",
        "greenlet-visualizer",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--profile",
        "web",
        "--crate-type",
        "cdylib",
    ]))?;
    let wasm = target_dir()
        .join("wasm32-unknown-unknown")
        .join("web")
        .join(format!("{LIB_NAME}.wasm"));
    cmd::run(
        Command::new(&bindgen)
            // The name section (function names for stack traces) is a tenth of the file.
            .args([
                "--target",
                "web",
                "--no-typescript",
                "--remove-name-section",
            ])
            .arg("--out-dir")
            .arg(&dist)
            .arg(&wasm),
    )?;
    let web = cmd::workspace_root().join("web");
    for file in PAGE_FILES {
        std::fs::copy(web.join(file), dist.join(file))
            .map_err(|e| format!("could not copy web/{file} to {}: {e}", dist.display()))?;
    }
    let size = std::fs::metadata(dist.join(format!("{LIB_NAME}_bg.wasm")))?.len();
    println!(
        "web page in {} ({LIB_NAME}_bg.wasm: {:.2} MiB) built in {}",
        dist.display(),
        size as f64 / (1024.0 * 1024.0),
        cmd::format_duration(start.elapsed())
    );
    Ok(())
}

/// The `wasm-bindgen` version `Cargo.lock` pins.
fn locked_wasm_bindgen_version() -> Result<String> {
    let lock = std::fs::read_to_string(cmd::workspace_root().join("Cargo.lock"))?;
    lock_version(&lock, "wasm-bindgen")
        .ok_or_else(|| "Cargo.lock has no wasm-bindgen package".into())
}

/// The version of package `name` in a `Cargo.lock`'s text.
fn lock_version(lock: &str, name: &str) -> Option<String> {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == wanted {
            let version = lines.next()?.strip_prefix("version = \"")?;
            return Some(version.trim_end_matches('"').to_owned());
        }
    }
    None
}

/// Installs `wasm-bindgen-cli` at the locked version under `target/tools/` unless it is
/// there already, and returns the binary. One directory per version: a lock file update
/// installs the new version beside the old instead of mixing them.
fn ensure_wasm_bindgen() -> Result<PathBuf> {
    let version = locked_wasm_bindgen_version()?;
    let root = target_dir()
        .join("tools")
        .join(format!("wasm-bindgen-{version}"));
    let bin = root.join("bin").join("wasm-bindgen");
    let installed = cmd::probe(Command::new(&bin).arg("--version"))
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(&version));
    if installed {
        println!("wasm-bindgen-cli {version}: present in {}", root.display());
        return Ok(bin);
    }
    // Without --locked: the CLI's own lock file pins a dependency version this machine's
    // registry does not have, and cargo resolves a compatible one instead. --debug: a cold
    // install takes about 1m10s instead of about 5 minutes on two cores, and the unoptimised
    // CLI still processes the page's .wasm in about 2 s (the output is byte-identical).
    cmd::run(
        cmd::cargo(["install", "--debug", "wasm-bindgen-cli", "--version"])
            .arg(format!("={version}"))
            .arg("--root")
            .arg(&root),
    )?;
    Ok(bin)
}

/// Records every lesson with the native visualizer (dev profile, the binary the test step
/// builds, so CI compiles nothing new for it) into `dir/<id>.json`.
fn record_lessons(dir: &Path) -> Result {
    cmd::run(&mut cmd::cargo(["test", "--workspace", "--no-run"]))?;
    let bin = target_dir().join("debug").join("greenlet-visualizer");
    let list = cmd::stdout(Command::new(&bin).arg("--list-lessons"))?;
    let ids: Vec<&str> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    if ids.is_empty() {
        return Err("greenlet-visualizer --list-lessons listed no lessons".into());
    }
    for id in ids {
        cmd::run(
            Command::new(&bin)
                .args(["--lesson", id, "--export"])
                .arg(dir.join(format!("{id}.json"))),
        )?;
    }
    Ok(())
}

/// The `playwright-core` the browser test drives Chromium with (pinned: a test's tools
/// should not change under it). Only the library: the browser is Debian's.
const PLAYWRIGHT_CORE: &str = "1.65.1";
/// The page's browser test (see the file).
const BROWSER_TEST: &str = "web/test/browser.cjs";
/// The size the test's browser window has, and so its screenshot.
const VIEWPORT: (u32, u32) = (1280, 720);

/// Ci step `web`: lints the wasm32 build, builds the page, serves it on localhost and runs
/// the browser test in headless Chromium, then checks its screenshot is a real rendering.
pub fn ci() -> Result {
    // Step `clippy` sees only the native build; the page's code (`cfg(target_arch = "wasm32")`)
    // is linted here.
    setup::ensure_web_target()?;
    cmd::run(&mut cmd::cargo([
        "clippy",
        "-p",
        "greenlet-visualizer",
        "--lib",
        "--target",
        "wasm32-unknown-unknown",
        "--",
        "-D",
        "warnings",
    ]))?;
    build()?;
    setup::ensure_browser()?;
    let node_modules = ensure_playwright()?;
    let out = target_dir().join("web-test");
    let screenshot = out.join("page.png");
    let _ = std::fs::remove_file(&screenshot);

    // An ephemeral port: CI never collides with a `cargo xtask serve` left running.
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let url = format!("http://{}", listener.local_addr()?);
    let root = dist_dir();
    std::thread::spawn(move || serve_forever(listener, root));
    println!("serving {} at {url}/", dist_dir().display());

    let output = cmd::stdout(
        Command::new("node")
            .arg(cmd::workspace_root().join(BROWSER_TEST))
            .arg(&url)
            .arg(&screenshot)
            .env("NODE_PATH", &node_modules),
    )?;
    print!("{output}");
    let picture = crate::visualizer::check_picture(&std::fs::read(&screenshot)?, VIEWPORT)
        .map_err(|e| format!("{}: {e}", screenshot.display()))?;
    println!(
        "{}: {}x{}, {} colours, {:.0}% not background",
        screenshot.display(),
        picture.width,
        picture.height,
        picture.colours,
        picture.busy * 100.0
    );
    Ok(())
}

/// Installs `playwright-core` with npm under `target/web-test/` unless that version is there,
/// and returns its `node_modules`.
fn ensure_playwright() -> Result<PathBuf> {
    let dir = target_dir().join("web-test");
    let modules = dir.join("node_modules");
    let manifest = modules.join("playwright-core").join("package.json");
    let present = std::fs::read_to_string(&manifest)
        .is_ok_and(|m| m.contains(&format!("\"version\": \"{PLAYWRIGHT_CORE}\"")));
    if present {
        println!(
            "playwright-core {PLAYWRIGHT_CORE}: present in {}",
            modules.display()
        );
        return Ok(modules);
    }
    std::fs::create_dir_all(&dir)?;
    cmd::run(
        Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&dir)
            .arg(format!("playwright-core@{PLAYWRIGHT_CORE}")),
    )?;
    Ok(modules)
}

/// `cargo xtask serve`: serves `web/dist/` on 127.0.0.1 until interrupted.
pub fn serve(port: u16) -> Result {
    let dist = dist_dir();
    if !dist.join("index.html").is_file() {
        return Err(format!(
            "{} has no page yet: run `cargo xtask web` first",
            dist.display()
        )
        .into());
    }
    let listener = TcpListener::bind(("127.0.0.1", port))?;
    println!(
        "serving {} at http://{}/ (Ctrl+C stops)",
        dist.display(),
        listener.local_addr()?
    );
    serve_forever(listener, dist);
    Ok(())
}

/// Answers every connection on `listener` from files under `root`, a thread each.
pub fn serve_forever(listener: TcpListener, root: PathBuf) {
    for stream in listener.incoming().flatten() {
        let root = root.clone();
        std::thread::spawn(move || {
            if let Err(e) = answer(stream, &root) {
                eprintln!("serve: {e}");
            }
        });
    }
}

/// Answers one HTTP/1.x request: GET or HEAD of a file under `root`, nothing else. Every
/// response closes the connection, which keeps the server a few lines long.
fn answer(stream: TcpStream, root: &Path) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read and ignored: nothing the page asks for depends on them.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut out = stream;
    if method != "GET" && method != "HEAD" {
        return respond(&mut out, "405 Method Not Allowed", "text/plain", b"", true);
    }
    let Some(path) = resolve(root, target) else {
        return respond(
            &mut out,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method == "GET",
        );
    };
    match std::fs::read(&path) {
        Ok(body) => respond(
            &mut out,
            "200 OK",
            content_type(&path),
            &body,
            method == "GET",
        ),
        Err(_) => respond(
            &mut out,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            method == "GET",
        ),
    }
}

/// The file under `root` a request target names (`/` is `index.html`), or `None` for
/// anything that could leave `root`.
fn resolve(root: &Path, target: &str) -> Option<PathBuf> {
    let path = target.split(['?', '#']).next()?;
    let relative = path.strip_prefix('/')?;
    let relative = if relative.is_empty() {
        "index.html"
    } else {
        relative
    };
    let safe = relative.split('/').all(|part| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && !part.contains('\\')
            && !part.contains('%')
    });
    safe.then(|| root.join(relative))
}

/// The `Content-Type` of a served file; `application/wasm` matters: browsers compile a
/// streamed `.wasm` only with it.
fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        Some("png") => "image/png",
        _ => "application/octet-stream",
    }
}

fn respond(
    out: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    with_body: bool,
) -> std::io::Result<()> {
    write!(
        out,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    if with_body {
        out.write_all(body)?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_version_finds_the_exact_package() {
        let lock = "[[package]]\nname = \"wasm-bindgen-macro\"\nversion = \"0.2.1\"\n\n\
                    [[package]]\nname = \"wasm-bindgen\"\nversion = \"0.2.130\"\n";
        assert_eq!(
            lock_version(lock, "wasm-bindgen").as_deref(),
            Some("0.2.130")
        );
        assert_eq!(lock_version(lock, "wasm"), None);
    }

    #[test]
    fn requests_stay_inside_the_root() {
        let root = Path::new("/srv");
        assert_eq!(resolve(root, "/"), Some(root.join("index.html")));
        assert_eq!(
            resolve(root, "/lessons/seed.json?x=1"),
            Some(root.join("lessons/seed.json"))
        );
        assert_eq!(resolve(root, "/../etc/passwd"), None);
        assert_eq!(resolve(root, "/a//b"), None);
        assert_eq!(resolve(root, "/%2e%2e/x"), None);
        assert_eq!(resolve(root, "http://host/x"), None);
    }
}
