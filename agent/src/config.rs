//! Flags (and their environment variables), validated once into a [`Config`].

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::api::flags::{ApiTcpArgs, ApiTcpConfig, ApiTcpError};
use crate::auth::{BearerToken, TokenError};
use crate::command::protocol::{HEIGHT_RANGE, WIDTH_RANGE};
use crate::command::server::CommandServerConfig;
use crate::instances::process::{CommandTemplate, TemplateError};
use crate::instances::{InstanceConfig, InstanceKind, ReadyCheck, Resolution};
use crate::media::encoder::{Backend, Codec, EncoderFactory, EncoderSettings};
use crate::media::pipeline::PipelineSettings;
use crate::stream::flags::{WebRtcArgs, WebRtcFlagError};
use crate::stream::WebRtcConfig;
use crate::x11::driver::Probe;
use crate::x11::flags::{X11Args, X11FlagError};

/// The seed's ports table stops the per-instance API ports at 4782 (4682 + 100).
const MAX_CAPACITY: u32 = 100;

#[derive(Debug, Parser)]
#[command(
    name = "openspace-agent",
    version,
    about = "OpenSpace rendering server: command API and instance supervisor"
)]
pub struct Args {
    /// Where the command WebSocket (START, STOP, ...) listens.
    #[arg(long, env = "OPENSPACE_COMMAND_LISTEN", default_value = "0.0.0.0:4699")]
    pub command_listen: SocketAddr,

    /// Where HTTP (/healthz, /readyz, /metrics) listens.
    #[arg(long, env = "OPENSPACE_HTTP_LISTEN", default_value = "0.0.0.0:4690")]
    pub http_listen: SocketAddr,

    /// Number of instance slots (ids 0..N-1).
    #[arg(long, env = "OPENSPACE_CAPACITY", default_value_t = 3)]
    pub capacity: u32,

    /// What an instance is: the built-in renderer (default without --instance-command), a
    /// program (default with it), or a program on a display of its own that the agent streams
    /// (`x11`).
    #[arg(long, env = "OPENSPACE_INSTANCE_KIND", value_enum)]
    pub instance_kind: Option<KindFlag>,

    /// Program to run per slot, split like a shell would (no shell runs it). Placeholders:
    /// {id}, {api_port}, {width}, {height}, {profile}.
    #[arg(long, env = "OPENSPACE_INSTANCE_COMMAND")]
    pub instance_command: Option<String>,

    /// Address the instance API ports (--api-base-port + id) of built-in instances listen on.
    #[arg(long, env = "OPENSPACE_API_HOST", default_value = "0.0.0.0")]
    pub api_host: std::net::IpAddr,

    /// Where the seed's signaling WebSocket listens (also served at /signaling on --http-listen).
    #[arg(
        long,
        env = "OPENSPACE_SIGNALING_LISTEN",
        default_value = "0.0.0.0:8443"
    )]
    pub signaling_listen: SocketAddr,

    #[command(flatten)]
    pub webrtc: WebRtcArgs,

    /// The encoders, one per codec, most preferred first: `openh264`, `vpx`, or `gst:ELEMENT`
    /// (a GStreamer encoder such as `nvh264enc`, `vah264enc`, `x264enc`, `vp8enc`; agents built
    /// with the `gstreamer` feature). Only these codecs are offered.
    #[arg(
        long = "encoder",
        env = "OPENSPACE_ENCODERS",
        value_delimiter = ',',
        default_value = "openh264,vpx"
    )]
    pub encoders: Vec<Backend>,

    /// Video codec offered first to viewers whose page names none (`h264`, `vp8`); the
    /// browser's answer decides among every codec this machine can encode.
    #[arg(long, env = "OPENSPACE_CODEC", default_value = "h264")]
    pub codec: Codec,

    /// Target video bitrate in kbit/s.
    #[arg(long, env = "OPENSPACE_BITRATE_KBPS", default_value_t = 3000)]
    pub bitrate_kbps: u32,

    /// Frames per second of streamed instances.
    #[arg(long, env = "OPENSPACE_FPS", default_value_t = 30)]
    pub fps: u32,

    /// Threads per encoder (libvpx's VP8 encoder uses one: more made it slower here, see
    /// BENCHMARKS.md).
    #[arg(long, env = "OPENSPACE_ENCODER_THREADS", default_value_t = 2)]
    pub encoder_threads: u16,

    /// Let every viewer steer, not only the first one connected.
    #[arg(long, env = "OPENSPACE_ALL_VIEWERS_CONTROL")]
    pub all_viewers_control: bool,

    /// Instance N's API port is this + N.
    #[arg(long, env = "OPENSPACE_API_BASE_PORT", default_value_t = 4682)]
    pub api_base_port: u16,

    #[command(flatten)]
    pub api_tcp: ApiTcpArgs,

    /// When an instance counts as RUNNING: once spawned, once its API port accepts, or (x11)
    /// once it maps a window. Default: `window` for x11 instances, else `process`.
    #[arg(long, env = "OPENSPACE_READY", value_enum)]
    pub ready: Option<ReadyCheck>,

    #[command(flatten)]
    pub x11: X11Args,

    /// Time between SIGTERM and SIGKILL when stopping an instance.
    #[arg(long, env = "OPENSPACE_STOP_GRACE", default_value = "5s")]
    pub stop_grace: humantime::Duration,

    /// An instance not ready within this is killed and reported as failed.
    #[arg(long, env = "OPENSPACE_START_TIMEOUT", default_value = "120s")]
    pub start_timeout: humantime::Duration,

    /// File holding the bearer token that command clients must present. Off when unset.
    #[arg(long, env = "OPENSPACE_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Command connections silent for this long are closed.
    #[arg(long, env = "OPENSPACE_COMMAND_IDLE_TIMEOUT", default_value = "60s")]
    pub command_idle_timeout: humantime::Duration,

    /// Simultaneous command connections; more are refused with HTTP 503.
    #[arg(
        long,
        env = "OPENSPACE_MAX_COMMAND_CONNECTIONS",
        default_value_t = 1024
    )]
    pub max_command_connections: usize,

    /// Resolution of instances whose START names none, as WIDTHxHEIGHT.
    #[arg(long, env = "OPENSPACE_DEFAULT_RESOLUTION", default_value = "1280x720", value_parser = parse_resolution)]
    pub default_resolution: Resolution,

    /// Log format.
    #[arg(long, env = "OPENSPACE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindFlag {
    Builtin,
    Command,
    X11,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug)]
pub struct Config {
    pub command_listen: SocketAddr,
    pub http_listen: SocketAddr,
    pub signaling_listen: SocketAddr,
    pub instances: InstanceConfig,
    pub command: CommandServerConfig,
    pub stream: StreamConfig,
    pub api_tcp: ApiTcpConfig,
}

/// How instances are streamed to viewers.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    pub webrtc: WebRtcConfig,
    /// Offered first when the page names no codec.
    pub codec: Codec,
    /// The codecs this machine can encode (the offer lists these only).
    pub encoders: Arc<EncoderFactory>,
    pub all_viewers_control: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--capacity must be 1..={MAX_CAPACITY}, got {0}")]
    Capacity(u32),
    #[error("--api-base-port {base} + --capacity {capacity} runs past port 65535")]
    ApiPorts { base: u16, capacity: u32 },
    #[error(transparent)]
    ApiTcp(#[from] ApiTcpError),
    #[error("--instance-command names {{api_tcp_port}}, which needs --program-api-tcp-base-port")]
    NoProgramTcpPort,
    #[error("--instance-kind {0} needs --instance-command")]
    NoInstanceCommand(&'static str),
    #[error("--instance-command is only used with --instance-kind command or x11")]
    UnusedInstanceCommand,
    #[error("--ready window is only for --instance-kind x11")]
    WindowReadyWithoutX11,
    #[error(transparent)]
    X11(#[from] X11FlagError),
    #[error("--fps must be 1..=60, got {0}")]
    Fps(u32),
    #[error("--bitrate-kbps must be 100..=100000, got {0}")]
    Bitrate(u32),
    #[error("--instance-command: {0}")]
    Template(#[from] TemplateError),
    #[error("--token-file: {0}")]
    Token(#[from] TokenError),
    #[error("--{name} must be more than zero")]
    ZeroDuration { name: &'static str },
    #[error("--max-command-connections must be at least 1")]
    NoConnections,
    #[error(transparent)]
    WebRtc(#[from] WebRtcFlagError),
    #[error("--encoder: {0}")]
    Encoder(#[from] crate::media::encoder::EncoderError),
}

impl Args {
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let webrtc = self.webrtc.into_config()?;
        if !(1..=MAX_CAPACITY).contains(&self.capacity) {
            return Err(ConfigError::Capacity(self.capacity));
        }
        if u32::from(self.api_base_port) + self.capacity - 1 > u32::from(u16::MAX) {
            return Err(ConfigError::ApiPorts {
                base: self.api_base_port,
                capacity: self.capacity,
            });
        }
        let api_tcp = self
            .api_tcp
            .into_config(self.capacity, self.api_base_port)?;
        let kind = match (self.instance_kind, self.instance_command.as_deref()) {
            (None | Some(KindFlag::Command), Some(command)) => {
                InstanceKind::Command(CommandTemplate::parse(command)?)
            }
            (Some(KindFlag::X11), Some(command)) => InstanceKind::X11(self.x11.into_settings(
                CommandTemplate::parse(command)?,
                self.capacity,
                &Probe::system(),
            )?),
            (Some(KindFlag::Command), None) => {
                return Err(ConfigError::NoInstanceCommand("command"))
            }
            (Some(KindFlag::X11), None) => return Err(ConfigError::NoInstanceCommand("x11")),
            (Some(KindFlag::Builtin), Some(_)) => return Err(ConfigError::UnusedInstanceCommand),
            (None | Some(KindFlag::Builtin), None) => InstanceKind::Builtin,
        };
        let template = match &kind {
            InstanceKind::Command(t) => Some(t),
            InstanceKind::X11(x11) => Some(&x11.command),
            InstanceKind::Builtin => None,
        };
        if template.is_some_and(|t| t.uses("{api_tcp_port}")) && api_tcp.program_base_port.is_none()
        {
            return Err(ConfigError::NoProgramTcpPort);
        }
        let is_x11 = matches!(kind, InstanceKind::X11(_));
        let ready = match self.ready {
            Some(ReadyCheck::Window) if !is_x11 => return Err(ConfigError::WindowReadyWithoutX11),
            Some(ready) => ready,
            None if is_x11 => ReadyCheck::Window,
            None => ReadyCheck::Process,
        };
        if !(1..=60).contains(&self.fps) {
            return Err(ConfigError::Fps(self.fps));
        }
        if !(100..=100_000).contains(&self.bitrate_kbps) {
            return Err(ConfigError::Bitrate(self.bitrate_kbps));
        }
        for (name, value) in [
            ("start-timeout", *self.start_timeout),
            ("command-idle-timeout", *self.command_idle_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::ZeroDuration { name });
            }
        }
        if self.max_command_connections == 0 {
            return Err(ConfigError::NoConnections);
        }
        let encoder = EncoderSettings {
            bitrate_bps: self.bitrate_kbps * 1000,
            fps: self.fps as f32,
            threads: self.encoder_threads.max(1),
        };
        let encoders = Arc::new(EncoderFactory::with_backends(&self.encoders, encoder)?);
        let token = self
            .token_file
            .as_deref()
            .map(BearerToken::from_file)
            .transpose()?;
        Ok(Config {
            command_listen: self.command_listen,
            http_listen: self.http_listen,
            signaling_listen: self.signaling_listen,
            instances: InstanceConfig {
                capacity: self.capacity,
                kind,
                api_host: self.api_host,
                require_tokens: token.is_some(),
                pipeline: PipelineSettings {
                    fps: self.fps,
                    encoder,
                    encoders: Arc::clone(&encoders),
                },
                api_base_port: self.api_base_port,
                program_api_tcp_base_port: api_tcp.program_base_port,
                ready,
                stop_grace: *self.stop_grace,
                start_timeout: *self.start_timeout,
                default_resolution: self.default_resolution,
                default_profile: "default".to_owned(),
            },
            command: CommandServerConfig {
                token,
                idle_timeout: *self.command_idle_timeout,
                max_connections: self.max_command_connections,
            },
            stream: StreamConfig {
                webrtc,
                codec: self.codec,
                encoders,
                all_viewers_control: self.all_viewers_control,
            },
            api_tcp,
        })
    }
}

pub(crate) fn parse_resolution(text: &str) -> Result<Resolution, String> {
    let (w, h) = text
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("expected WIDTHxHEIGHT, got {text:?}"))?;
    let width: u32 = w.trim().parse().map_err(|_| format!("bad width {w:?}"))?;
    let height: u32 = h.trim().parse().map_err(|_| format!("bad height {h:?}"))?;
    if !WIDTH_RANGE.contains(&width) || !HEIGHT_RANGE.contains(&height) {
        return Err(format!(
            "{width}x{height} is outside {}..={} x {}..={}",
            WIDTH_RANGE.start(),
            WIDTH_RANGE.end(),
            HEIGHT_RANGE.start(),
            HEIGHT_RANGE.end()
        ));
    }
    Ok(Resolution { width, height })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::x11::settings::{X11DisplayChoice, X11Settings, XServer};
    use std::time::Duration;

    fn args(extra: &[&str]) -> Result<Config, ConfigError> {
        let mut argv = vec!["openspace-agent"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv)
            .expect("flags parse")
            .into_config()
    }

    #[test]
    fn a_turn_relay_needs_its_urls_and_its_secret() {
        let relay = |extra: &[&str]| match args(extra) {
            Err(ConfigError::WebRtc(e)) => Some(e.to_string()),
            Err(other) => panic!("{other}"),
            Ok(_) => None,
        };
        let url = "turn:198.18.210.3:3478?transport=udp";
        assert!(relay(&["--turn-url", url]).is_some_and(|e| e.contains("--turn-secret-file")));
        assert!(relay(&["--ice-transport", "relay"]).is_some_and(|e| e.contains("needs a relay")));
        assert!(relay(&["--turn-url", "http://x"]).is_some_and(|e| e.contains("turn:")));
        let dir = std::env::temp_dir().join(format!("osk-turn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let secret = dir.join("secret");
        std::fs::write(&secret, "s3cret\n").unwrap();
        let secret = secret.to_str().unwrap();
        let config = args(&[
            "--turn-url",
            url,
            "--turn-secret-file",
            secret,
            "--ice-transport",
            "relay",
        ])
        .unwrap();
        let webrtc = config.stream.webrtc;
        assert!(webrtc.relay_only);
        let turn = webrtc.turn.expect("a relay");
        assert_eq!(turn.urls, [url]);
        std::fs::write(dir.join("empty"), "\n").unwrap();
        let empty = dir.join("empty");
        assert!(relay(&[
            "--turn-url",
            url,
            "--turn-secret-file",
            empty.to_str().unwrap()
        ])
        .is_some_and(|e| e.contains("empty")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn defaults_follow_the_seed() {
        let c = args(&["--instance-command", "sleep 100"]).unwrap();
        assert_eq!(c.command_listen.port(), 4699);
        assert_eq!(c.http_listen.port(), 4690);
        assert_eq!(c.instances.capacity, 3);
        assert_eq!(c.instances.api_port(2), 4684);
        assert_eq!(c.api_tcp.port(2), Some(4583));
        assert_eq!(c.instances.stop_grace, Duration::from_secs(5));
        assert_eq!(c.instances.start_timeout, Duration::from_secs(120));
        assert!(c.command.token.is_none());
    }

    #[test]
    fn invalid_settings_are_refused_with_the_flag_named() {
        assert!(matches!(
            args(&["--instance-kind", "command"]),
            Err(ConfigError::NoInstanceCommand("command"))
        ));
        assert!(matches!(
            args(&["--instance-kind", "x11"]),
            Err(ConfigError::NoInstanceCommand("x11"))
        ));
        assert!(matches!(
            args(&["--ready", "window", "--instance-command", "xterm"]),
            Err(ConfigError::WindowReadyWithoutX11)
        ));
        assert!(matches!(
            args(&[
                "--instance-kind",
                "x11",
                "--instance-command",
                "xterm",
                "--x11-display-base",
                "65535",
                "--capacity",
                "2"
            ]),
            Err(ConfigError::X11(X11FlagError::Displays { .. }))
        ));
        let x11 = args(&["--instance-kind", "x11", "--instance-command", "xterm"]).expect("valid");
        assert_eq!(x11.instances.ready, ReadyCheck::Window);
        assert!(matches!(
            x11.instances.kind,
            InstanceKind::X11(X11Settings {
                display: X11DisplayChoice::PerSlot {
                    base: 100,
                    server: XServer::Xvfb
                },
                kiosk: true,
                ..
            })
        ));
        assert!(matches!(
            args(&[]).map(|c| c.instances.kind),
            Ok(InstanceKind::Builtin)
        ));
        assert!(matches!(
            args(&["--instance-kind", "builtin", "--instance-command", "x"]),
            Err(ConfigError::UnusedInstanceCommand)
        ));
        assert!(matches!(args(&["--fps", "0"]), Err(ConfigError::Fps(0))));
        assert!(matches!(
            args(&["--webrtc-address", "nope"]),
            Err(ConfigError::WebRtc(WebRtcFlagError::Address(_)))
        ));
        assert_eq!(
            args(&["--webrtc-address", "127.0.0.1"])
                .unwrap()
                .stream
                .webrtc
                .udp_addrs,
            ["127.0.0.1:0"]
        );
        assert!(matches!(
            args(&["--instance-command", "x", "--capacity", "0"]),
            Err(ConfigError::Capacity(0))
        ));
        assert!(matches!(
            args(&[
                "--instance-command",
                "x",
                "--api-base-port",
                "65500",
                "--capacity",
                "50"
            ]),
            Err(ConfigError::ApiPorts { .. })
        ));
        assert!(matches!(
            args(&["--instance-command", "x {nope}"]),
            Err(ConfigError::Template(_))
        ));
        assert!(matches!(
            args(&[
                "--instance-command",
                "x",
                "--token-file",
                "/nonexistent/token"
            ]),
            Err(ConfigError::Token(_))
        ));
        assert!(matches!(
            args(&["--api-tcp-base-port", "4680", "--capacity", "5"]),
            Err(ConfigError::ApiTcp(ApiTcpError::Overlap { .. }))
        ));
        assert!(matches!(
            args(&["--instance-command", "x {api_tcp_port}"]),
            Err(ConfigError::NoProgramTcpPort)
        ));
        assert!(parse_resolution("1920x1080").is_ok());
        assert!(parse_resolution("8x8").is_err());
        assert!(parse_resolution("wide").is_err());
    }
}
