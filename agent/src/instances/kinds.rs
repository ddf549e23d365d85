//! What an instance is and how instances are run: data only, fixed at start-up. The supervisor
//! keeps slots of them; `lifecycle/` has one file per kind that runs one.

use std::time::Duration;

use super::process::CommandTemplate;
use super::readiness::ReadyCheck;
use super::slots::Resolution;
use crate::media::pipeline::{stream_dimension, PipelineSettings, MAX_HEIGHT, MAX_WIDTH};
use crate::x11::settings::X11Settings;

/// What an instance is.
#[derive(Debug, Clone)]
pub enum InstanceKind {
    /// The built-in software renderer, streamed by the agent itself.
    Builtin,
    /// Any program from `--instance-command`.
    Command(CommandTemplate),
    /// A program from `--instance-command` on a display of its own, streamed by the agent.
    X11(X11Settings),
}

/// How instances are run; fixed at start-up.
#[derive(Debug, Clone)]
pub struct InstanceConfig {
    pub capacity: u32,
    pub kind: InstanceKind,
    /// Where instance API ports (api_base_port + id) of built-in instances listen.
    pub api_host: std::net::IpAddr,
    /// Viewers and API clients must present the instance's token.
    pub require_tokens: bool,
    pub pipeline: PipelineSettings,
    pub api_base_port: u16,
    /// Programs serve their own TCP API on loopback at this + id (`{api_tcp_port}`).
    pub program_api_tcp_base_port: Option<u16>,
    pub ready: ReadyCheck,
    pub stop_grace: Duration,
    pub start_timeout: Duration,
    pub default_resolution: Resolution,
    pub default_profile: String,
}

impl InstanceConfig {
    /// 4682 + id by default; config validation guarantees it fits.
    pub fn api_port(&self, id: u32) -> u16 {
        self.api_base_port.saturating_add(id as u16)
    }

    /// The picture size an instance of this kind really gets when `asked` is asked for: pictures
    /// the agent streams are even (4:2:0) and at most the encoder's largest (and, for x11, the
    /// virtual screen's) size; a program that streams itself gets what was asked. START,
    /// RESOLUTION and STATUS answer with this size.
    pub fn fit(&self, asked: Resolution) -> Resolution {
        let (max_width, max_height) = match &self.kind {
            InstanceKind::Command(_) => return asked,
            InstanceKind::Builtin => (MAX_WIDTH, MAX_HEIGHT),
            InstanceKind::X11(x11) => (
                x11.max_resolution.width.min(MAX_WIDTH),
                x11.max_resolution.height.min(MAX_HEIGHT),
            ),
        };
        Resolution {
            width: stream_dimension(asked.width, max_width),
            height: stream_dimension(asked.height, max_height),
        }
    }

    /// Where instance `id`'s program serves its TCP API, when `--program-api-tcp-base-port` is set.
    pub fn program_api_tcp_port(&self, id: u32) -> Option<u16> {
        self.program_api_tcp_base_port
            .map(|b| b.saturating_add(id as u16))
    }
}
