//! How x11 instances get their display: data only, fixed at start-up (from `flags.rs`).

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
    /// Xvfb at `:base+id`, started and stopped with the instance.
    Virtual { base: u32 },
    /// A display that exists already; `{id}` is replaced by the instance id.
    Existing(String),
}
