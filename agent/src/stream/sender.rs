//! A viewer's frames out: the negotiated codec's RTP packetizer, the playout-delay extension on
//! every packet, skipping to a keyframe after a gap, and keyframe requests from the receiver's
//! RTCP (PLI/FIR).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rtc::rtp::packetizer::{new_packetizer, Packetizer};
use rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters;
use tokio::sync::broadcast;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};

use super::keyframes::is_keyframe_request;
use super::playout_delay;
use super::viewer::ViewerError;
use crate::media::pipeline::{EncodedSample, Subscription};

/// Largest RTP packet we send, in bytes (as webrtc-rs's sample track).
const RTP_MTU: usize = 1200;
/// RTP clock rate of video, in Hz (RFC 6184, RFC 7741).
const VIDEO_CLOCK_RATE: u32 = 90_000;

/// Splits the negotiated codec's frames into RTP packets on `ssrc`: H.264 FU-A/STAP-A
/// (RFC 6184), VP8 with picture ids (RFC 7741).
pub(super) fn packetizer(
    negotiated: &RTCRtpCodecParameters,
    ssrc: u32,
) -> Result<Box<dyn Packetizer + Send>, ViewerError> {
    let payloader = negotiated
        .rtp_codec
        .payloader()
        .map_err(|e| ViewerError::Packetizer(e.to_string()))?;
    Ok(Box::new(new_packetizer(
        Instant::now(),
        RTP_MTU,
        negotiated.payload_type,
        ssrc,
        payloader,
        Box::new(rtc::rtp::sequence::new_random_sequencer()),
        VIDEO_CLOCK_RATE,
    )))
}

/// Writes encoded frames to the track. After a gap (a lagging receiver) it waits for the next
/// keyframe, which it asks for, so the decoder never sees a broken reference chain.
pub(super) async fn send_frames(
    mut subscription: Subscription,
    track: Arc<TrackLocalStaticRTP>,
    mut packetizer: Box<dyn Packetizer + Send>,
    playout_delay_id: Option<u8>,
) -> Result<(), ViewerError> {
    let zero_delay = Bytes::copy_from_slice(&playout_delay::payload(0, 0));
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
        let ticks = (sample.duration.as_secs_f64() * f64::from(VIDEO_CLOCK_RATE)) as u32;
        let data: &Bytes = &sample.data;
        let packets = packetizer
            .packetize(Instant::now(), data, ticks)
            .map_err(|e| ViewerError::Packetizer(e.to_string()))?;
        for mut packet in packets {
            if let Some(id) = playout_delay_id {
                // Every packet carries it, so a receiver that joins or loses packets still sees it.
                packet
                    .header
                    .set_extension(id, zero_delay.clone())
                    .map_err(|e| ViewerError::Packetizer(e.to_string()))?;
            }
            track.write_rtp(packet).await?;
        }
    }
}

pub(super) async fn watch_rtcp(
    track: Arc<TrackLocalStaticRTP>,
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
