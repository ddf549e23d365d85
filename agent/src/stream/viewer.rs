//! One browser watching one instance: the agent offers a peer connection with one video track and
//! the "input" data channel, relays ICE through signaling, then writes the instance's encoded
//! frames to the track and feeds the page's input back to the instance.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodecParameters, RTCRtpCodingParameters, RTCRtpEncodingParameters,
    RtpCodecKind,
};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::codecs::{self, AnswerError};
use super::control::{self, ViewerMessage};
use super::held::Held;
use super::ice::IceServer;
use super::peer::{self, WebRtcConfig};
use super::playout_delay;
use super::sender::{packetizer, send_frames, watch_rtcp};
use crate::instances::{Resolution, Supervisor};
use crate::media::encoder::{h264_level_idc, Codec, EncoderFactory};
use crate::media::pipeline::{Pipeline, MAX_HEIGHT, MAX_WIDTH};
use crate::metrics::Metrics;

/// Signaling messages from the browser for this viewer.
#[derive(Debug)]
pub enum FromBrowser {
    Answer(String),
    Candidate(RTCIceCandidateInit),
}

/// Signaling messages for the browser.
#[derive(Debug)]
pub enum ToBrowser {
    /// ICE servers for the browser's peer connection (the TURN relay with this viewer's
    /// credential); sent before the offer, and only to clients that asked with SESSION.
    Config(Vec<IceServer>),
    Offer(String),
    Candidate(RTCIceCandidateInit),
    /// Every local candidate has been sent.
    CandidatesDone,
}

/// Everything viewers share.
pub struct ViewerDeps {
    pub supervisor: Arc<Supervisor>,
    pub webrtc: WebRtcConfig,
    pub metrics: Metrics,
    /// Offered first when the page names no codec (`--codec`).
    pub codec: Codec,
    /// The codecs this machine can encode: the offer lists these only.
    pub encoders: Arc<EncoderFactory>,
    /// Every viewer may steer, not only the first.
    pub all_control: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ViewerError {
    #[error("instance {0} has no picture to stream (not running, or not streamed by the agent)")]
    NoPicture(u32),
    #[error("WebRTC: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    #[error("encoder: {0}")]
    Encoder(#[from] crate::media::encoder::EncoderError),
    #[error("the browser's answer is not valid SDP: {0}")]
    BadAnswer(String),
    #[error(transparent)]
    Answer(#[from] AnswerError),
    #[error("the connection failed")]
    Failed,
    #[error("this agent can encode no video codec")]
    NoCodec,
    #[error("RTP packetization: {0}")]
    Packetizer(String),
}

/// Peer connection events, forwarded from webrtc-rs's callbacks into the session's loop.
enum PcEvent {
    Candidate(RTCIceCandidateInit),
    GatheringComplete,
    State(RTCPeerConnectionState),
}

struct Events(mpsc::UnboundedSender<PcEvent>);

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Events {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.0.send(PcEvent::Candidate(init));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.0.send(PcEvent::GatheringComplete);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.0.send(PcEvent::State(state));
    }

    async fn on_ice_connection_state_change(&self, state: RTCIceConnectionState) {
        tracing::debug!(%state, "ICE connection state");
    }
}

/// How long a "disconnected" connection may take to recover before it is given up.
const DISCONNECTED_GRACE: Duration = Duration::from_secs(5);

/// Runs one viewer until the browser goes away or the connection fails. Always closes the peer
/// connection before returning.
///
/// `preferred`: the codec the page asked for, else the agent's `--codec`; every other codec this
/// machine can encode is offered too, and the browser's answer decides.
pub async fn run(
    deps: Arc<ViewerDeps>,
    instance: u32,
    viewer: u64,
    preferred: Option<Codec>,
    mut inbound: mpsc::Receiver<FromBrowser>,
    outbound: mpsc::UnboundedSender<ToBrowser>,
) -> Result<(), ViewerError> {
    let pipeline = deps
        .supervisor
        .pipeline(instance)
        .ok_or(ViewerError::NoPicture(instance))?;
    let codecs = deps.encoders.preference(preferred.unwrap_or(deps.codec));
    if codecs.is_empty() {
        return Err(ViewerError::NoCodec);
    }
    let offered = codecs::offer(&codecs, h264_level(&deps, &pipeline, instance));
    let relay = deps.webrtc.turn.as_ref().map(|turn| {
        let label = deps
            .supervisor
            .view(instance)
            .ok()
            .and_then(|v| v.session)
            .unwrap_or_else(|| format!("instance-{instance}"));
        turn.credentials(&label, SystemTime::now())
    });
    if let Some(relay) = &relay {
        let _ = outbound.send(ToBrowser::Config(vec![relay.clone()]));
    }
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pc = peer::build(
        &deps.webrtc,
        &offered,
        relay.as_ref(),
        Arc::new(Events(events_tx)),
    )
    .await?;
    let _seat = deps.supervisor.roster().join(instance, viewer);
    deps.metrics.viewers.inc();
    let ids = Ids {
        instance,
        viewer,
        offered,
    };
    let result = negotiate_and_stream(
        &deps,
        &pc,
        &pipeline,
        ids,
        &mut inbound,
        &outbound,
        &mut events,
    )
    .await;
    deps.metrics.viewers.dec();
    let _ = pc.close().await;
    result
}

/// The H.264 level offered: that of the instance's picture now (a later RESOLUTION may raise it;
/// `level-asymmetry-allowed=1` and browsers decode past the offered level), or of the largest
/// picture the pipeline makes when the size is not known yet.
fn h264_level(deps: &ViewerDeps, pipeline: &Pipeline, instance: u32) -> u8 {
    let (width, height) = deps
        .supervisor
        .view(instance)
        .ok()
        .and_then(|v| v.resolution)
        .map_or((MAX_WIDTH, MAX_HEIGHT), |r| (r.width, r.height));
    let settings = pipeline.encoder_settings();
    h264_level_idc(width, height, settings.fps, settings.bitrate_bps)
}

struct Ids {
    instance: u32,
    viewer: u64,
    /// Everything in the offer, most preferred first (`codecs::offer`).
    offered: Vec<RTCRtpCodecParameters>,
}

/// The video track's description: one encoding of `codec` on `ssrc`.
fn video_track(ids: &Ids, codec: &RTCRtpCodec, ssrc: u32) -> MediaStreamTrack {
    let (instance, viewer) = (ids.instance, ids.viewer);
    MediaStreamTrack::new(
        format!("openspace-{instance}"),
        format!("video-{instance}-{viewer}"),
        format!("instance {instance}"),
        RtpCodecKind::Video,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: codec.clone(),
            ..Default::default()
        }],
    )
}

async fn negotiate_and_stream(
    deps: &Arc<ViewerDeps>,
    pc: &Arc<dyn PeerConnection>,
    pipeline: &Arc<Pipeline>,
    ids: Ids,
    inbound: &mut mpsc::Receiver<FromBrowser>,
    outbound: &mpsc::UnboundedSender<ToBrowser>,
    events: &mut mpsc::UnboundedReceiver<PcEvent>,
) -> Result<(), ViewerError> {
    let (instance, viewer) = (ids.instance, ids.viewer);
    let ssrc: u32 = rand::random();
    // What the browser's answer chose; until then, what we prefer.
    let mut negotiated = ids.offered[0].clone();
    // We packetize ourselves (`send_frames`), for whichever codec the answer picks, and write
    // RTP to this track, which stays bound to the sender whatever codec it carries.
    let track = Arc::new(TrackLocalStaticRTP::new(video_track(
        &ids,
        &negotiated.rtp_codec,
        ssrc,
    )));
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await?;
    // Offer everything, ours first; without this the offer names only the track's codec.
    for transceiver in pc.get_transceivers().await {
        transceiver
            .set_codec_preferences(ids.offered.clone())
            .await?;
    }
    let channel = pc.create_data_channel("input", None).await?;

    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer.clone()).await?;
    let _ = outbound.send(ToBrowser::Offer(offer.sdp));
    // Every candidate belongs to the first m-line (BUNDLE): name it, as browsers other than
    // Chromium need `sdpMid` (webrtc-rs leaves it empty).
    let video_mid = match pc.get_transceivers().await.first() {
        Some(transceiver) => transceiver.mid().await?,
        None => None,
    };

    let mut tasks = JoinSet::new();
    let mut pending_candidates = Vec::new();
    let mut answered = false;
    let mut playout_delay_id: Option<u8> = None;
    let mut streaming = false;
    let mut disconnected_since: Option<tokio::time::Instant> = None;
    loop {
        let give_up = async {
            match disconnected_since {
                Some(since) => tokio::time::sleep_until(since + DISCONNECTED_GRACE).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = inbound.recv() => match message {
                None => return Ok(()),
                Some(FromBrowser::Answer(sdp)) => {
                    let chosen = codecs::chosen(&sdp, &ids.offered)?;
                    if chosen.rtp_codec != negotiated.rtp_codec {
                        // The sender's description must name the chosen codec before the answer
                        // starts its RTP stream: NACK and report interceptors bind to the
                        // payload type of the track's codec. (webrtc-rs swaps the description
                        // only; `track` stays the bound writer.)
                        let description = TrackLocalStaticRTP::new(video_track(&ids, &chosen.rtp_codec, ssrc));
                        sender.replace_track(Arc::new(description)).await?;
                    }
                    negotiated = chosen;
                    let answer = RTCSessionDescription::answer(sdp).map_err(|e| ViewerError::BadAnswer(e.to_string()))?;
                    pc.set_remote_description(answer).await?;
                    answered = true;
                    // The id the answer gave the playout-delay extension, if it took it.
                    playout_delay_id = sender.get_parameters().await?.rtp_parameters.header_extensions
                        .iter()
                        .find(|e| e.uri == playout_delay::URI)
                        .and_then(|e| u8::try_from(e.id).ok());
                    for candidate in pending_candidates.drain(..) {
                        add_candidate(pc, candidate).await;
                    }
                }
                Some(FromBrowser::Candidate(candidate)) if answered => add_candidate(pc, candidate).await,
                Some(FromBrowser::Candidate(candidate)) => pending_candidates.push(candidate),
            },
            event = events.recv() => match event {
                None => return Err(ViewerError::Failed),
                Some(PcEvent::Candidate(mut init)) => {
                    if init.sdp_mid.as_deref().is_none_or(str::is_empty) {
                        init.sdp_mid.clone_from(&video_mid);
                        init.sdp_mline_index = Some(0);
                    }
                    let _ = outbound.send(ToBrowser::Candidate(init));
                }
                Some(PcEvent::GatheringComplete) => { let _ = outbound.send(ToBrowser::CandidatesDone); }
                Some(PcEvent::State(state)) => {
                    tracing::debug!(instance, viewer, %state, "peer connection state");
                    match state {
                        RTCPeerConnectionState::Connected => {
                            disconnected_since = None;
                            if !streaming {
                                streaming = true;
                                let codec = codecs::codec_of(&negotiated).ok_or(ViewerError::NoCodec)?;
                                let packetizer = packetizer(&negotiated, ssrc)?;
                                let subscription = pipeline.subscribe(codec)?;
                                let keyframes = subscription.keyframe_requester();
                                let payload_type = negotiated.payload_type;
                                tracing::info!(instance, viewer, %codec, payload_type, "viewer connected; streaming");
                                tasks.spawn(send_frames(subscription, Arc::clone(&track), packetizer, playout_delay_id));
                                tasks.spawn(watch_rtcp(Arc::clone(&track), keyframes));
                                tasks.spawn(serve_channel(Arc::clone(deps), Arc::clone(&channel), Arc::clone(pipeline), instance, viewer));
                            }
                        }
                        RTCPeerConnectionState::Disconnected => {
                            disconnected_since.get_or_insert_with(tokio::time::Instant::now);
                        }
                        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed => return Err(ViewerError::Failed),
                        _ => {}
                    }
                }
            },
            _ = give_up => return Err(ViewerError::Failed),
            // Any of them ending (the instance stopped, the channel closed) ends the viewer.
            Some(ended) = tasks.join_next() => {
                return match ended {
                    Ok(result) => result,
                    Err(_) => Err(ViewerError::Failed),
                };
            }
        }
    }
}

async fn add_candidate(pc: &Arc<dyn PeerConnection>, candidate: RTCIceCandidateInit) {
    if candidate.candidate.is_empty() {
        return; // end-of-candidates
    }
    if let Err(e) = pc.add_ice_candidate(candidate).await {
        tracing::debug!(error = %e, "ignoring a remote ICE candidate");
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The "input" data channel: announces the viewer's role, applies its input and resize
/// requests when it controls the instance, and answers pings for clock sync.
async fn serve_channel(
    deps: Arc<ViewerDeps>,
    channel: Arc<dyn DataChannel>,
    pipeline: Arc<Pipeline>,
    instance: u32,
    viewer: u64,
) -> Result<(), ViewerError> {
    let mut roster_changes = deps.supervisor.roster().changes();
    let controls = |deps: &ViewerDeps| {
        deps.all_control || deps.supervisor.roster().is_controller(instance, viewer)
    };
    let size = |deps: &ViewerDeps| {
        deps.supervisor
            .view(instance)
            .ok()
            .and_then(|v| v.resolution)
            .map_or((0, 0), |r| (r.width, r.height))
    };
    let mut open = false;
    // Released when this viewer loses control and, through Drop, whenever this task ends or is
    // cancelled (the connection failed, the page was closed).
    let mut held = Releaser {
        pipeline: Arc::clone(&pipeline),
        held: Held::default(),
    };
    loop {
        tokio::select! {
            event = channel.poll() => match event {
                None | Some(DataChannelEvent::OnClose) => return Ok(()),
                Some(DataChannelEvent::OnOpen) => {
                    open = true;
                    let hello = control::hello(controls(&deps), pipeline.resizable(), size(&deps));
                    let _ = channel.send_text(&hello).await;
                }
                Some(DataChannelEvent::OnMessage(message)) => {
                    let reply = match std::str::from_utf8(&message.data) {
                        Ok(text) if message.is_string => on_message(&deps, &pipeline, instance, controls(&deps), text, &mut held.held),
                        _ => Some(control::error("send JSON text")),
                    };
                    if let Some(reply) = reply {
                        let _ = channel.send_text(&reply).await;
                    }
                }
                Some(_) => {}
            },
            changed = roster_changes.changed() => {
                if changed.is_err() { return Ok(()); }
                if !controls(&deps) {
                    held.release(); // control went to another viewer
                }
                if open {
                    let hello = control::hello(controls(&deps), pipeline.resizable(), size(&deps));
                    let _ = channel.send_text(&hello).await;
                }
            }
        }
    }
}

/// Releases what a viewer holds on its instance (see `stream::held`), at the latest when dropped.
struct Releaser {
    pipeline: Arc<Pipeline>,
    held: Held,
}

impl Releaser {
    fn release(&mut self) {
        if self.held.is_empty() {
            return;
        }
        let events = self.held.release();
        tracing::debug!(?events, "releasing what the viewer held");
        for event in events {
            self.pipeline.input(event);
        }
    }
}

impl Drop for Releaser {
    fn drop(&mut self) {
        self.release();
    }
}

fn on_message(
    deps: &ViewerDeps,
    pipeline: &Pipeline,
    instance: u32,
    controller: bool,
    text: &str,
    held: &mut Held,
) -> Option<String> {
    match control::parse(text) {
        Err(e) => Some(control::error(&e)),
        Ok(ViewerMessage::Ping { t }) => Some(control::pong(t, wall_ms())),
        Ok(_) if !controller => Some(control::error(
            "view only: another viewer controls this instance",
        )),
        Ok(ViewerMessage::Input(event)) => {
            held.track(&event);
            pipeline.input(event);
            None
        }
        Ok(ViewerMessage::Resize { width, height }) if pipeline.resizable() => {
            let clamp = |v: u32, r: std::ops::RangeInclusive<u32>| v.clamp(*r.start(), *r.end());
            let resolution = Resolution {
                width: clamp(width, crate::command::protocol::WIDTH_RANGE),
                height: clamp(height, crate::command::protocol::HEIGHT_RANGE),
            };
            match deps.supervisor.set_resolution(instance, resolution) {
                Ok(applied) => Some(control::resolution(applied.width, applied.height)),
                Err(e) => Some(control::error(&e.to_string())),
            }
        }
        Ok(ViewerMessage::Resize { .. }) => {
            Some(control::error("this instance cannot change its resolution"))
        }
    }
}
