//! One browser watching one instance: the agent offers a peer connection with one video track and
//! the "input" data channel, relays ICE through signaling, then writes the instance's encoded
//! frames to the track and feeds the page's input back to the instance.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::transport::RTCIceCandidateInit;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionEventHandler, RTCIceConnectionState, RTCIceGatheringState,
    RTCPeerConnectionIceEvent, RTCPeerConnectionState,
};

use super::control::{self, ViewerMessage};
use super::keyframes::is_keyframe_request;
use super::peer::{self, codec_parameters, WebRtcConfig};
use crate::instances::{Resolution, Supervisor};
use crate::media::encoder::{Codec, EncoderFactory};
use crate::media::pipeline::{EncodedSample, Pipeline, Subscription};
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
    #[error("the connection failed")]
    Failed,
    #[error("this agent can encode no video codec")]
    NoCodec,
    #[error("the browser declined {0} (answered {1:?}); ask for the codec it decodes with SESSION's \"codec\"")]
    CodecRefused(Codec, Option<Codec>),
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
    let offered = deps.encoders.preference(preferred.unwrap_or(deps.codec));
    let first = *offered.first().ok_or(ViewerError::NoCodec)?;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let pc = peer::build(&deps.webrtc, &offered, Arc::new(Events(events_tx))).await?;
    let _seat = deps.supervisor.roster().join(instance, viewer);
    deps.metrics.viewers.inc();
    let ids = Ids {
        instance,
        viewer,
        preferred: first,
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

struct Ids {
    instance: u32,
    viewer: u64,
    preferred: Codec,
    /// Every codec in the offer, most preferred first.
    offered: Vec<Codec>,
}

/// The video track for `codec`, sending on `ssrc`.
fn video_track(
    ids: &Ids,
    codec: Codec,
    ssrc: u32,
) -> Result<Arc<TrackLocalStaticSample>, ViewerError> {
    let (instance, viewer) = (ids.instance, ids.viewer);
    Ok(Arc::new(TrackLocalStaticSample::new(
        Instant::now(),
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
                codec: codec_parameters(codec).rtp_codec,
                ..Default::default()
            }],
        ),
    )?))
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
    let track = video_track(&ids, ids.preferred, ssrc)?;
    // What the browser's answer chose: (codec, payload type).
    let mut negotiated = (ids.preferred, codec_parameters(ids.preferred).payload_type);
    let sender = pc
        .add_track(Arc::clone(&track) as Arc<dyn TrackLocal>)
        .await?;
    // Offer every codec, ours first; without this the offer names only the track's codec.
    for transceiver in pc.get_transceivers().await {
        transceiver
            .set_codec_preferences(ids.offered.iter().map(|c| codec_parameters(*c)).collect())
            .await?;
    }
    let channel = pc.create_data_channel("input", None).await?;

    let offer = pc.create_offer(None).await?;
    pc.set_local_description(offer.clone()).await?;
    let _ = outbound.send(ToBrowser::Offer(offer.sdp));

    let mut tasks = JoinSet::new();
    let mut pending_candidates = Vec::new();
    let mut answered = false;
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
                    let answer = RTCSessionDescription::answer(sdp).map_err(|e| ViewerError::BadAnswer(e.to_string()))?;
                    pc.set_remote_description(answer).await?;
                    answered = true;
                    let chosen = sender.get_parameters().await?.rtp_parameters.codecs.first().cloned();
                    if let Some(parameters) = chosen {
                        match peer::codec_of(&parameters) {
                            Some(codec) if codec == ids.preferred => negotiated = (codec, parameters.payload_type),
                            // The page names the codec its browser decodes (SESSION's `codec`),
                            // so an answer that declines it is a broken client.
                            other => return Err(ViewerError::CodecRefused(ids.preferred, other)),
                        }
                    }
                    for candidate in pending_candidates.drain(..) {
                        add_candidate(pc, candidate).await;
                    }
                }
                Some(FromBrowser::Candidate(candidate)) if answered => add_candidate(pc, candidate).await,
                Some(FromBrowser::Candidate(candidate)) => pending_candidates.push(candidate),
            },
            event = events.recv() => match event {
                None => return Err(ViewerError::Failed),
                Some(PcEvent::Candidate(init)) => { let _ = outbound.send(ToBrowser::Candidate(init)); }
                Some(PcEvent::GatheringComplete) => { let _ = outbound.send(ToBrowser::CandidatesDone); }
                Some(PcEvent::State(state)) => {
                    tracing::debug!(instance, viewer, %state, "peer connection state");
                    match state {
                        RTCPeerConnectionState::Connected => {
                            disconnected_since = None;
                            if !streaming {
                                streaming = true;
                                let (codec, payload_type) = negotiated;
                                let subscription = pipeline.subscribe(codec)?;
                                let keyframes = subscription.keyframe_requester();
                                tracing::info!(instance, viewer, %codec, "viewer connected; streaming");
                                tasks.spawn(send_frames(subscription, Arc::clone(&track), ssrc, payload_type));
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

/// Writes encoded frames to the track. After a gap (a lagging receiver) it waits for the next
/// keyframe, which it asks for, so the decoder never sees a broken reference chain.
async fn send_frames(
    mut subscription: Subscription,
    track: Arc<TrackLocalStaticSample>,
    ssrc: u32,
    payload_type: u8,
) -> Result<(), ViewerError> {
    subscription.request_keyframe();
    let mut need_keyframe = true;
    loop {
        let sample: Arc<EncodedSample> = match subscription.frames.recv().await {
            Ok(sample) => sample,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                need_keyframe = true;
                subscription.request_keyframe();
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        if need_keyframe && !sample.keyframe {
            continue;
        }
        need_keyframe = false;
        let out = Sample {
            data: sample.data.clone(),
            duration: sample.duration,
            ..Sample::new(Instant::now())
        };
        track
            .sample_writer(ssrc, payload_type)
            .write_sample(&out)
            .await?;
    }
}

async fn watch_rtcp(
    track: Arc<TrackLocalStaticSample>,
    request_keyframe: impl Fn(),
) -> Result<(), ViewerError> {
    while let Some(event) = track.poll().await {
        if let TrackLocalEvent::OnRtcpPacket(packets) = event {
            if packets.iter().any(|p| is_keyframe_request(p.as_ref())) {
                request_keyframe();
            }
        }
    }
    // No more feedback (the track was unbound) is no reason to end the viewer.
    std::future::pending().await
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
                        Ok(text) if message.is_string => on_message(&deps, &pipeline, instance, controls(&deps), text),
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
                if open {
                    let hello = control::hello(controls(&deps), pipeline.resizable(), size(&deps));
                    let _ = channel.send_text(&hello).await;
                }
            }
        }
    }
}

fn on_message(
    deps: &ViewerDeps,
    pipeline: &Pipeline,
    instance: u32,
    controller: bool,
    text: &str,
) -> Option<String> {
    match control::parse(text) {
        Err(e) => Some(control::error(&e)),
        Ok(ViewerMessage::Ping { t }) => Some(control::pong(t, wall_ms())),
        Ok(_) if !controller => Some(control::error(
            "view only: another viewer controls this instance",
        )),
        Ok(ViewerMessage::Input(event)) => {
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
                Ok(()) => Some(control::resolution(resolution.width, resolution.height)),
                Err(e) => Some(control::error(&e.to_string())),
            }
        }
        Ok(ViewerMessage::Resize { .. }) => {
            Some(control::error("this instance cannot change its resolution"))
        }
    }
}
