//! The x11 flags (a clap group flattened into the agent's `Args`), validated into
//! [`X11Settings`].

use clap::Args;

use super::driver::{DriverFlag, Probe};
use super::settings::{X11DisplayChoice, X11Settings, XServer};
use crate::config::parse_resolution;
use crate::instances::process::CommandTemplate;
use crate::instances::slots::Resolution;

/// Where x11 instances draw.
#[derive(Debug, Clone, Args)]
pub struct X11Args {
    /// x11: instance N gets its own X server on display :BASE+N.
    #[arg(long, env = "OPENSPACE_X11_DISPLAY_BASE", default_value_t = 100)]
    pub x11_display_base: u32,

    /// x11: the X server started per instance: `xvfb` (virtual, OpenGL on the CPU) or `xorg`
    /// (Xorg with `--x11-driver`: the node's GPU for hardware OpenGL).
    #[arg(long, env = "OPENSPACE_X11_SERVER", value_enum, default_value = "xvfb")]
    pub x11_server: ServerFlag,

    /// x11 on Xorg: the video driver. `nvidia` (the pod's GPU, headless), `dummy` (no GPU:
    /// Mesa on the CPU), or `auto`: nvidia when its kernel driver and X module are present.
    #[arg(long, env = "OPENSPACE_X11_DRIVER", value_enum, default_value = "auto")]
    pub x11_driver: DriverFlag,

    /// x11: use this display instead of starting Xvfb (e.g. `:0` from an Xorg on the GPU;
    /// `{id}` is replaced by the instance id, e.g. `:{id}`).
    #[arg(long, env = "OPENSPACE_X11_DISPLAY")]
    pub x11_display: Option<String>,

    /// x11: the virtual screen's largest size; RESOLUTION sets any mode up to it (RandR).
    #[arg(long, env = "OPENSPACE_X11_MAX_RESOLUTION", default_value = "3840x2160", value_parser = parse_resolution)]
    pub x11_max_resolution: Resolution,

    /// x11: make top-level windows fill the screen when they map and when it is resized, as a
    /// kiosk window manager would.
    #[arg(long, env = "OPENSPACE_X11_KIOSK", default_value_t = true, action = clap::ArgAction::Set)]
    pub x11_kiosk: bool,
}

/// `--x11-server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerFlag {
    Xvfb,
    Xorg,
}

#[derive(Debug, thiserror::Error)]
pub enum X11FlagError {
    #[error("--x11-display-base {base} + --capacity {capacity} runs past display 65535")]
    Displays { base: u32, capacity: u32 },
    #[error("{0}")]
    Driver(String),
}

impl X11Args {
    /// The settings of x11 instances running `command` in `capacity` slots. With Xorg, the
    /// driver is resolved here, once, by looking at this machine (`probe`).
    pub fn into_settings(
        self,
        command: CommandTemplate,
        capacity: u32,
        probe: &Probe,
    ) -> Result<X11Settings, X11FlagError> {
        if self.x11_display.is_none() && self.x11_display_base + capacity - 1 > 65535 {
            return Err(X11FlagError::Displays {
                base: self.x11_display_base,
                capacity,
            });
        }
        Ok(X11Settings {
            command,
            display: match self.x11_display {
                Some(name) => X11DisplayChoice::Existing(name),
                None => X11DisplayChoice::PerSlot {
                    base: self.x11_display_base,
                    server: match self.x11_server {
                        ServerFlag::Xvfb => XServer::Xvfb,
                        ServerFlag::Xorg => XServer::Xorg(
                            probe
                                .resolve(self.x11_driver)
                                .map_err(X11FlagError::Driver)?,
                        ),
                    },
                },
            },
            max_resolution: self.x11_max_resolution,
            kiosk: self.x11_kiosk,
        })
    }
}
