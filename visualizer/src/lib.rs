//! The greenlet visualizer: step through a recorded greenlet program and see its source, every
//! greenlet, the parent tree, the stacks and every switch.
//!
//! - [`model`] indexes a [`greenlet::trace::Trace`] once, so drawing never walks it whole.
//! - [`app`] holds what is loaded and where the viewer is, and draws a frame into any
//!   [`egui::Ui`] ([`App::show`]); [`ui`] has one module per view.
//! - [`lessons`] are small real programs, recorded natively when chosen.
//! - Natively, [`native`] opens the window and [`screenshot`] renders a frame to a PNG without
//!   a display.

#![warn(missing_docs)]

pub mod action;
pub mod app;
#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod frames;
pub mod keys;
pub mod lessons;
pub mod model;
#[cfg(not(target_arch = "wasm32"))]
pub mod native;
pub mod playback;
#[cfg(not(target_arch = "wasm32"))]
pub mod screenshot;
pub mod synthetic;
pub mod ui;
#[cfg(target_arch = "wasm32")]
pub mod web;

// On the web the engine does not build: `greenlet::trace` is then this crate's `web::trace`
// (the engine's own format and reader sources), so every `use greenlet::trace::…` stays as is.
#[cfg(target_arch = "wasm32")]
extern crate self as greenlet;
#[cfg(target_arch = "wasm32")]
pub use web::trace;

pub use app::{App, FrameStats, Origin, ViewState};
