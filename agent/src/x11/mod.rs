//! X11 instances: a program on a display of its own (Xvfb, or one the pod provides), its picture
//! captured with MIT-SHM and converted to I420 for the same encoders and WebRTC path as the
//! built-in renderer, and the viewers' input injected back with XTEST.
//!
//! - `settings.rs` + `flags.rs`: where x11 instances draw, from the `--x11-*` flags.
//! - `display.rs`: the per-slot X server (`xvfb.rs`, or `xorg.rs` with a driver from
//!   `driver.rs`) and its cookie (`auth.rs`), or an existing display.
//! - `capture.rs` + `convert.rs`: root window -> shared memory -> I420.
//! - `input.rs` + `keymap.rs`: viewer input -> XTEST (`KeyboardEvent.code` -> keysym -> keycode).
//! - `screen.rs`: RandR resizes for RESOLUTION.
//! - `windows.rs`: readiness (the first window mapped) and kiosk placement (windows fill the screen).
//! - `source.rs`: all of it as the pipeline's frame source.

pub mod auth;
pub mod capture;
pub mod convert;
pub mod display;
pub mod driver;
pub mod flags;
pub mod input;
pub mod keymap;
pub mod screen;
pub mod settings;
pub mod source;
pub mod windows;
pub mod xorg;
pub mod xvfb;

use x11rb::errors::{ConnectError, ConnectionError, ReplyError, ReplyOrIdError};

#[derive(Debug, thiserror::Error)]
pub enum X11Error {
    #[error("cannot connect to the X display: {0}")]
    Connect(#[from] ConnectError),
    #[error("the X connection failed: {0}")]
    Connection(#[from] ConnectionError),
    #[error("the X server refused a request: {0}")]
    Reply(#[from] ReplyError),
    #[error("the X server refused a request: {0}")]
    ReplyOrId(#[from] ReplyOrIdError),
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Convert(#[from] convert::ConvertError),
}
