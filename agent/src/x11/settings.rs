//! How x11 instances get their display: data only, fixed at start-up (from `flags.rs`).

use super::driver::XorgDriver;
use crate::instances::process::CommandTemplate;
use crate::instances::slots::Resolution;

/// How X11 instances get their display.
#[derive(Debug, Clone)]
pub struct X11Settings {
    pub command: CommandTemplate,
    pub display: X11DisplayChoice,
    /// The virtual screen's size limit (RandR maximum).
    pub max_resolution: Resolution,
    /// Top-level windows fill the screen.
    pub kiosk: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum X11DisplayChoice {
    /// An X server of the agent's at `:base+id`, started and stopped with the instance.
    PerSlot { base: u32, server: XServer },
    /// A display that exists already; `{id}` is replaced by the instance id.
    Existing(String),
}

/// The X server the agent starts per slot (`--x11-server`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XServer {
    /// Virtual framebuffer, software OpenGL (Mesa llvmpipe).
    Xvfb,
    /// Xorg with a video driver: the node's GPU (nvidia), or dummy.
    Xorg(XorgDriver),
}
