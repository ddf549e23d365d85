//! The WebRTC flags (a clap group flattened into the agent's `Args`): ICE servers, media
//! addresses and the TURN relay, validated into a [`WebRtcConfig`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use clap::Args;

use super::ice::IceServer;
use super::peer::WebRtcConfig;
use super::turn::TurnRest;

/// How viewers' media reaches this agent.
#[derive(Debug, Clone, Args)]
pub struct WebRtcArgs {
    /// STUN or TURN server for WebRTC (`stun:HOST:PORT`, `turn:USER:PASS@HOST:PORT`); repeatable.
    #[arg(
        long = "ice-server",
        env = "OPENSPACE_ICE_SERVERS",
        value_delimiter = ',',
        value_parser = IceServer::parse
    )]
    pub ice_servers: Vec<IceServer>,

    /// The address browsers reach this host at (NAT 1:1), advertised in ICE candidates.
    #[arg(long, env = "OPENSPACE_PUBLIC_IP")]
    pub public_ip: Option<IpAddr>,

    /// Local address for WebRTC media (`IP` or `IP:PORT`); repeatable. Default: every interface.
    #[arg(
        long = "webrtc-address",
        env = "OPENSPACE_WEBRTC_ADDRESSES",
        value_delimiter = ','
    )]
    pub webrtc_addresses: Vec<String>,

    /// The TURN relay's URLs (`turn:HOST:3478?transport=udp`, `...?transport=tcp`,
    /// `turns:HOST:443?transport=tcp`); repeatable. Each viewer that asks with SESSION gets them
    /// with its own short-lived credential (needs --turn-secret-file).
    #[arg(long = "turn-url", env = "OPENSPACE_TURN_URLS", value_delimiter = ',')]
    pub turn_urls: Vec<String>,

    /// File holding the secret shared with the TURN relay (coturn's `static-auth-secret`).
    #[arg(long, env = "OPENSPACE_TURN_SECRET_FILE")]
    pub turn_secret_file: Option<PathBuf>,

    /// How long a viewer's TURN credential stays valid.
    #[arg(long, env = "OPENSPACE_TURN_CREDENTIAL_TTL", default_value = "12h")]
    pub turn_credential_ttl: humantime::Duration,

    /// Which candidates the agent's own peer uses: `all`, or `relay` (only through the TURN
    /// relay, for nodes that nobody may reach directly).
    #[arg(
        long,
        env = "OPENSPACE_ICE_TRANSPORT",
        value_enum,
        default_value = "all"
    )]
    pub ice_transport: IceTransport,

    /// How long browsers may buffer frames before showing them: `zero` (the playout-delay RTP
    /// header extension with 0/0, which Chromium honours: no smoothing, lowest latency) or
    /// `browser` (their own jitter buffer's choice).
    #[arg(
        long,
        env = "OPENSPACE_PLAYOUT_DELAY",
        value_enum,
        default_value = "zero"
    )]
    pub playout_delay: PlayoutDelay,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlayoutDelay {
    /// Receivers show each frame as soon as it is decoded (playout-delay 0/0).
    Zero,
    /// Receivers buffer as they see fit (no playout-delay extension).
    Browser,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IceTransport {
    All,
    Relay,
}

#[derive(Debug, thiserror::Error)]
pub enum WebRtcFlagError {
    #[error("--webrtc-address {0:?} is not an IP address (optionally with :PORT)")]
    Address(String),
    #[error("--turn-url {0:?}: expected turn: or turns: (RFC 7065)")]
    TurnUrl(String),
    #[error("--turn-url needs --turn-secret-file, and --turn-secret-file needs --turn-url")]
    TurnHalf,
    #[error("--turn-secret-file {path}: {reason}")]
    TurnSecret { path: String, reason: String },
    #[error("--turn-credential-ttl must be more than zero")]
    ZeroTtl,
    #[error("--ice-transport relay needs a relay: --turn-url or a turn: --ice-server")]
    RelayWithoutTurn,
}

impl WebRtcArgs {
    pub fn into_config(self) -> Result<WebRtcConfig, WebRtcFlagError> {
        let udp_addrs = self
            .webrtc_addresses
            .iter()
            .map(|a| match (a.parse::<IpAddr>(), a.parse::<SocketAddr>()) {
                (Ok(ip), _) => Ok(SocketAddr::new(ip, 0).to_string()),
                (_, Ok(addr)) => Ok(addr.to_string()),
                _ => Err(WebRtcFlagError::Address(a.clone())),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let turn = self.turn()?;
        let relay_only = self.ice_transport == IceTransport::Relay;
        let static_relay = self
            .ice_servers
            .iter()
            .any(|s| s.urls.iter().any(|u| u.starts_with("turn")));
        if relay_only && turn.is_none() && !static_relay {
            return Err(WebRtcFlagError::RelayWithoutTurn);
        }
        Ok(WebRtcConfig {
            zero_playout_delay: self.playout_delay == PlayoutDelay::Zero,
            ice_servers: self.ice_servers,
            public_ip: self.public_ip,
            udp_addrs,
            turn,
            relay_only,
        })
    }

    /// The TURN relay, when both its URLs and its secret are given.
    fn turn(&self) -> Result<Option<TurnRest>, WebRtcFlagError> {
        if let Some(bad) = self
            .turn_urls
            .iter()
            .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")))
        {
            return Err(WebRtcFlagError::TurnUrl(bad.clone()));
        }
        let path = match (&self.turn_secret_file, self.turn_urls.is_empty()) {
            (None, true) => return Ok(None),
            (Some(path), false) => path,
            _ => return Err(WebRtcFlagError::TurnHalf),
        };
        let fail = |reason: String| WebRtcFlagError::TurnSecret {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let secret = text.trim();
        if secret.is_empty() {
            return Err(fail("the file is empty".into()));
        }
        if self.turn_credential_ttl.is_zero() {
            return Err(WebRtcFlagError::ZeroTtl);
        }
        Ok(Some(TurnRest::new(
            self.turn_urls.clone(),
            secret.as_bytes().to_vec(),
            *self.turn_credential_ttl,
        )))
    }
}
