//! Building one viewer's peer connection: codecs, interceptors and ICE settings.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::interceptor::Slot;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::RTCIceTransportPolicy;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, Registry,
};

use super::ice::IceServer;
use super::keyframes::KeyframeRequests;
use super::playout_delay;
use super::turn::TurnRest;

/// WebRTC settings of the agent, from its flags.
#[derive(Debug, Clone, Default)]
pub struct WebRtcConfig {
    /// STUN/TURN servers the agent's peer uses.
    pub ice_servers: Vec<IceServer>,
    /// The address browsers should use for this host (NAT 1:1), e.g. a node's public IP.
    pub public_ip: Option<IpAddr>,
    /// Local addresses to gather host candidates on (`IP:0`); empty = every interface.
    pub udp_addrs: Vec<String>,
    /// The TURN relay with per-viewer credentials (`--turn-url`, `--turn-secret-file`).
    pub turn: Option<TurnRest>,
    /// Only relay candidates for the agent's own peer (`--ice-transport relay`).
    pub relay_only: bool,
    /// Ask receivers to show frames at once (playout delay 0, `--playout-delay zero`).
    pub zero_playout_delay: bool,
}

/// Set once joining the mDNS multicast group failed: later peers go without mDNS at once.
static MDNS_UNAVAILABLE: AtomicBool = AtomicBool::new(false);

/// A peer connection offering `codecs` (from `stream::codecs::offer`), most preferred first,
/// using `config`'s ICE servers and `relay` (this viewer's TURN credential) when there is one.
///
/// webrtc-rs resolves browsers' `.local` host candidates through an mDNS socket that joins
/// 224.0.0.251; on a host with no route for multicast (no default route, e.g. a pod network
/// that only reaches a relay) joining fails with ENODEV and so would every viewer. Then the peer
/// is built without mDNS: remote `.local` candidates are dropped, and the browser's address
/// still arrives as a peer-reflexive candidate with its first connectivity check.
pub async fn build(
    config: &WebRtcConfig,
    codecs: &[RTCRtpCodecParameters],
    relay: Option<&IceServer>,
    handler: Arc<dyn PeerConnectionEventHandler>,
) -> webrtc::error::Result<Arc<dyn PeerConnection>> {
    if !MDNS_UNAVAILABLE.load(Ordering::Relaxed) {
        match build_with(
            config,
            codecs,
            relay,
            Arc::clone(&handler),
            MulticastDnsMode::QueryOnly,
        )
        .await
        {
            Ok(pc) => return Ok(pc),
            Err(e) => {
                tracing::warn!(error = %e, "cannot use mDNS here; peers go without it from now on");
                MDNS_UNAVAILABLE.store(true, Ordering::Relaxed);
            }
        }
    }
    build_with(config, codecs, relay, handler, MulticastDnsMode::Disabled).await
}

async fn build_with(
    config: &WebRtcConfig,
    codecs: &[RTCRtpCodecParameters],
    relay: Option<&IceServer>,
    handler: Arc<dyn PeerConnectionEventHandler>,
    mdns: MulticastDnsMode,
) -> webrtc::error::Result<Arc<dyn PeerConnection>> {
    let mut media_engine = MediaEngine::default();
    for codec in codecs {
        media_engine.register_codec(codec.clone(), RtpCodecKind::Video)?;
    }
    if config.zero_playout_delay {
        media_engine.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: playout_delay::URI.to_owned(),
            },
            RtpCodecKind::Video,
            None,
        )?;
    }
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    // Application-most, so the default interceptors have seen all inbound RTCP first.
    let registry = registry.with(Slot::from(14_000), KeyframeRequests::default());

    let policy = if config.relay_only {
        RTCIceTransportPolicy::Relay
    } else {
        RTCIceTransportPolicy::All
    };
    let configuration = RTCConfigurationBuilder::new()
        .with_ice_servers(
            config
                .ice_servers
                .iter()
                .chain(relay)
                .map(IceServer::to_rtc)
                .collect(),
        )
        .with_ice_transport_policy(policy)
        .build();
    // Browsers hide their host addresses behind mDNS names, so their working pair is usually
    // peer-reflexive; waiting the default 1 s before accepting one only delays the first frame.
    let mut settings = SettingEngineBuilder::new()
        .with_include_loopback_candidate(true)
        .with_prflx_acceptance_min_wait(Some(std::time::Duration::ZERO))
        .with_multicast_dns_mode(mdns);
    if let Some(ip) = config.public_ip {
        settings = settings.with_nat_1to1_ips(
            vec![ip.to_string()],
            rtc::peer_connection::transport::RTCIceCandidateType::Host,
        );
    }
    let mut builder = PeerConnectionBuilder::new()
        .with_configuration(configuration)
        .with_media_engine(media_engine)
        .with_setting_engine(settings.build())
        .with_interceptor_registry(registry)
        .with_handler(handler);
    let addrs = if config.udp_addrs.is_empty() {
        vec!["0.0.0.0:0".to_owned()]
    } else {
        config.udp_addrs.clone()
    };
    builder = builder.with_udp_addrs(addrs);
    let pc = builder.build().await?;
    Ok(Arc::new(pc))
}
