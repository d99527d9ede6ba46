//! CI step `visualizer`: the visualizer binary draws real pictures.
//!
//! 1. `--screenshot`, headless: the frame is rendered by wgpu on Mesa's CPU Vulkan driver
//!    (lavapipe), with no display at all.
//! 2. `--window-screenshot` under Xvfb: the real window (winit, X11, a wgpu surface) opens,
//!    settles, and saves what it shows.
//! 3. A trace file that cannot be read: the binary says why, exits with failure, and still
//!    draws the window with the error in it.
//!
//! Each PNG must have the expected size and look like a rendering: many colours, and most of
//! it not background. The binary is the one the test step built (dev profile, same features),
//! so this step compiles nothing new.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Result, cmd};

/// The size every picture is taken at: the layout's smallest supported window.
const SIZE: (u32, u32) = (1280, 720);
/// A lesson and step with every view busy: four greenlets, switches, output, frames.
const LESSON: [&str; 4] = ["--lesson", "pingpong", "--step", "12"];

/// Runs the three checks.
pub fn run() -> Result {
    // Builds nothing after the test step; on its own (`--only visualizer`) it builds what the
    // test step would, with the same features.
    cmd::run(&mut cmd::cargo(["test", "--workspace", "--no-run"]))?;
    let bin = target_dir().join("debug").join("greenlet-visualizer");
    let out = target_dir().join("visualizer-check");
    std::fs::create_dir_all(&out)?;
    let size = format!("{}x{}", SIZE.0, SIZE.1);

    // Mesa and winit look for a runtime directory; a private one keeps them quiet.
    let runtime = out.join("xdg-runtime");
    std::fs::create_dir_all(&runtime)?;
    set_private(&runtime)?;

    let headless = out.join("headless.png");
    cmd::run(
        Command::new(&bin)
            .arg("--screenshot")
            .arg(&headless)
            .args(LESSON)
            .args(["--size", &size])
            .env("XDG_RUNTIME_DIR", &runtime),
    )?;
    report(&headless, check_picture(&std::fs::read(&headless)?, SIZE)?);

    let window = out.join("window.png");
    cmd::run(
        // A window that never draws would wait forever: coreutils' timeout ends it.
        Command::new("timeout")
            .args(["--kill-after=10", "180", "xvfb-run"])
            .arg("--auto-servernum")
            .arg(format!("--server-args=-screen 0 {size}x24"))
            .arg(&bin)
            .arg("--window-screenshot")
            .arg(&window)
            .args(LESSON)
            .args(["--size", &size])
            .env("XDG_RUNTIME_DIR", &runtime),
    )?;
    report(&window, check_picture(&std::fs::read(&window)?, SIZE)?);

    let bad = out.join("not-a-trace.json");
    std::fs::write(&bad, "[\"this is not a trace\"]\n")?;
    let error_png = out.join("error.png");
    // Run directly rather than with `cmd`: failing is the expected outcome, and its message
    // is what is checked.
    println!(
        "$ greenlet-visualizer --screenshot {} {}",
        error_png.display(),
        bad.display()
    );
    let output = Command::new(&bin)
        .arg("--screenshot")
        .arg(&error_png)
        .arg(&bad)
        .args(["--size", &size])
        .env("XDG_RUNTIME_DIR", &runtime)
        .stdin(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.success() || !stderr.contains("a trace is a JSON object") {
        return Err(format!(
            "a bad trace file should fail with the reader's error, got {} and stderr:\n{stderr}",
            output.status
        )
        .into());
    }
    report(
        &error_png,
        check_picture(&std::fs::read(&error_png)?, SIZE)?,
    );
    Ok(())
}

/// `$CARGO_TARGET_DIR`, or the workspace's `target/`.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cmd::workspace_root().join("target"))
}

/// Mode 0700, as the XDG base directory specification wants of a runtime directory.
fn set_private(dir: &Path) -> Result {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

fn report(path: &Path, picture: Picture) {
    println!(
        "{}: {}x{}, {} colours, {:.0}% not background",
        path.display(),
        picture.width,
        picture.height,
        picture.colours,
        picture.busy * 100.0
    );
}

/// What a PNG looks like, in numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Picture {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Distinct RGBA colours.
    pub colours: usize,
    /// Fraction of pixels that are not the most common colour (the background).
    pub busy: f64,
}

/// A rendering of the window, not a blank or broken image: at least this many colours (text
/// is anti-aliased, states have their own colours)...
const MIN_COLOURS: usize = 64;
/// ...and at least this much of it drawn on (panels, text, bars, lanes).
const MIN_BUSY: f64 = 0.05;

/// Decodes `png` and checks it is a real rendering of `size`.
///
/// # Errors
/// Not a PNG, another size, or too plain to be a rendering.
pub fn check_picture(png: &[u8], size: (u32, u32)) -> std::result::Result<Picture, String> {
    let picture = measure(png)?;
    if (picture.width, picture.height) != size {
        return Err(format!(
            "picture is {}x{}, expected {}x{}",
            picture.width, picture.height, size.0, size.1
        ));
    }
    if picture.colours < MIN_COLOURS || picture.busy < MIN_BUSY {
        return Err(format!(
            "picture looks blank: {} colours, {:.1}% not background (want at least {MIN_COLOURS} \
             colours and {:.0}%)",
            picture.colours,
            picture.busy * 100.0,
            MIN_BUSY * 100.0
        ));
    }
    Ok(picture)
}

/// Size, colours and coverage of a PNG.
fn measure(png: &[u8]) -> std::result::Result<Picture, String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png));
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| format!("not a PNG: {e}"))?;
    let mut pixels = vec![0; reader.output_buffer_size().ok_or("PNG too large")?];
    let info = reader
        .next_frame(&mut pixels)
        .map_err(|e| format!("corrupt PNG: {e}"))?;
    let channels = info.color_type.samples();
    let mut counts: HashMap<[u8; 4], usize> = HashMap::new();
    for px in pixels[..info.buffer_size()].chunks_exact(channels) {
        let mut rgba = [0, 0, 0, 255];
        match channels {
            1 | 2 => rgba[..3].fill(px[0]),
            _ => rgba[..3].copy_from_slice(&px[..3]),
        }
        if channels == 2 || channels == 4 {
            rgba[3] = px[channels - 1];
        }
        *counts.entry(rgba).or_default() += 1;
    }
    let total = (info.width as usize * info.height as usize).max(1);
    let background = counts.values().copied().max().unwrap_or(0);
    Ok(Picture {
        width: info.width,
        height: info.height,
        colours: counts.len(),
        busy: 1.0 - background as f64 / total as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Encodes an RGBA image of `width` x `height` whose pixels `paint` chooses.
    fn png_of(width: u32, height: u32, paint: impl Fn(u32, u32) -> [u8; 4]) -> Vec<u8> {
        let mut bytes = Vec::new();
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgba);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        let data: Vec<u8> = (0..height)
            .flat_map(|y| (0..width).map(move |x| (x, y)))
            .flat_map(|(x, y)| paint(x, y))
            .collect();
        writer.write_image_data(&data).unwrap();
        writer.finish().unwrap();
        bytes
    }

    #[test]
    fn a_busy_colourful_picture_passes() {
        let png = png_of(64, 32, |x, y| {
            if y < 8 {
                [27, 27, 27, 255]
            } else {
                [(x * 4) as u8, (y * 8) as u8, 100, 255]
            }
        });
        let picture = check_picture(&png, (64, 32)).unwrap();
        assert_eq!((picture.width, picture.height), (64, 32));
        assert!(picture.colours > 64);
    }

    #[test]
    fn blank_wrong_sized_and_broken_pictures_fail() {
        let blank = png_of(64, 32, |_, _| [27, 27, 27, 255]);
        let err = check_picture(&blank, (64, 32)).unwrap_err();
        assert!(err.contains("looks blank: 1 colours"), "{err}");
        let busy = png_of(64, 32, |x, y| [(x * 4) as u8, (y * 8) as u8, 0, 255]);
        let err = check_picture(&busy, (1280, 720)).unwrap_err();
        assert!(err.contains("picture is 64x32, expected 1280x720"), "{err}");
        assert!(
            check_picture(b"not a png", (64, 32))
                .unwrap_err()
                .starts_with("not a PNG")
        );
        // Two colours, half and half: drawn on, but not a rendering.
        let stripes = png_of(64, 32, |x, _| if x < 32 { [0; 4] } else { [255; 4] });
        assert!(check_picture(&stripes, (64, 32)).is_err());
    }
}
