//! The codecs an offer lists and the one the browser's answer picked. Pure: SDP text in, RTP
//! codec parameters out, so every browser's answer can be tested without a browser.
//!
//! The answer decides (RFC 3264 §6.1: the answerer lists the formats it accepts, most preferred
//! first, with the offer's payload types): whatever it picks among the offered codecs is what
//! that viewer is sent, whatever the page asked for.

use rtc::peer_connection::configuration::media_engine::{MIME_TYPE_H264, MIME_TYPE_VP8};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::rtp_transceiver::rtp_sender::{RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters};

use crate::media::encoder::Codec;

/// The H.264 profiles offered, with their payload types: (payload type, profile_idc and
/// constraint byte as hex). Our openh264 stream is constrained baseline (profile 66 with
/// constraint_set0 and constraint_set1), which is also a valid Baseline stream and, through
/// constraint_set1, a valid Main stream (H.264 A.2.1, A.2.2; RFC 6184 Table 5). Offering all
/// three lets an answerer that accepts only one of them still decode; 96 for constrained
/// baseline as the original did.
const H264_PROFILES: [(u8, &str); 3] = [(96, "42e0"), (98, "4200"), (99, "4d00")];
const VP8_PAYLOAD_TYPE: u8 = 97;

/// Why an answer cannot be streamed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    #[error("the browser's answer is not valid SDP: {0}")]
    NotSdp(String),
    #[error("the browser's answer has no video section")]
    NoVideo,
    #[error(
        "the browser accepts none of the offered codecs ({offered}); it answered {answered:?}"
    )]
    NoCommonCodec { offered: String, answered: String },
}

/// The RTP codec parameters of everything offered for `codecs` (most preferred first), H.264 at
/// `h264_level` (a `level_idc`, see `media::encoder::h264::level_idc`).
pub fn offer(codecs: &[Codec], h264_level: u8) -> Vec<RTCRtpCodecParameters> {
    codecs
        .iter()
        .flat_map(|codec| match codec {
            Codec::H264 => H264_PROFILES
                .iter()
                .map(|(payload_type, profile)| {
                    parameters(
                        MIME_TYPE_H264,
                        *payload_type,
                        &format!(
                            "level-asymmetry-allowed=1;packetization-mode=1;\
                             profile-level-id={profile}{h264_level:02x}"
                        ),
                    )
                })
                .collect::<Vec<_>>(),
            Codec::Vp8 => vec![parameters(MIME_TYPE_VP8, VP8_PAYLOAD_TYPE, "")],
        })
        .collect()
}

fn parameters(mime_type: &str, payload_type: u8, fmtp: &str) -> RTCRtpCodecParameters {
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: mime_type.to_owned(),
            clock_rate: 90_000,
            channels: 0,
            sdp_fmtp_line: fmtp.to_owned(),
            rtcp_feedback: vec![
                feedback("nack", ""),
                feedback("nack", "pli"),
                feedback("ccm", "fir"),
                feedback("goog-remb", ""),
            ],
        },
        payload_type,
    }
}

/// The codec that RTP codec parameters stand for.
pub fn codec_of(parameters: &RTCRtpCodecParameters) -> Option<Codec> {
    parameters
        .rtp_codec
        .mime_type
        .strip_prefix("video/")
        .and_then(|name| name.parse().ok())
}

/// The offered codec the answer picked: the first payload type of its video section that was
/// offered. An answer that rejects the video section (port 0) or lists none of ours is refused.
pub fn chosen(
    answer_sdp: &str,
    offered: &[RTCRtpCodecParameters],
) -> Result<RTCRtpCodecParameters, AnswerError> {
    let parsed = RTCSessionDescription::answer(answer_sdp.to_owned())
        .and_then(|answer| answer.unmarshal())
        .map_err(|e| AnswerError::NotSdp(e.to_string()))?;
    let video = parsed
        .media_descriptions
        .iter()
        .find(|m| m.media_name.media == "video")
        .ok_or(AnswerError::NoVideo)?;
    let accepted = if video.media_name.port.value == 0 {
        &[][..]
    } else {
        &video.media_name.formats[..]
    };
    accepted
        .iter()
        .find_map(|format| {
            let payload_type: u8 = format.parse().ok()?;
            offered
                .iter()
                .find(|p| p.payload_type == payload_type)
                .cloned()
        })
        .ok_or_else(|| AnswerError::NoCommonCodec {
            offered: describe(offered),
            answered: video.media_name.formats.join(" "),
        })
}

/// `H264/96 (profile-level-id=42e01f), VP8/97`: for error messages.
fn describe(offered: &[RTCRtpCodecParameters]) -> String {
    offered
        .iter()
        .map(|p| {
            let name = p.rtp_codec.mime_type.trim_start_matches("video/");
            match p
                .rtp_codec
                .sdp_fmtp_line
                .split(';')
                .find(|f| f.starts_with("profile-level-id="))
            {
                Some(profile) => format!("{name}/{} ({profile})", p.payload_type),
                None => format!("{name}/{}", p.payload_type),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer whose video section accepts `formats` (payload types, most preferred first).
    fn answer(port: u16, formats: &str, rtpmaps: &str) -> String {
        format!(
            "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
             m=video {port} UDP/TLS/RTP/SAVPF {formats}\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n\
             a=recvonly\r\n{rtpmaps}\
             m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\n"
        )
    }

    #[test]
    fn the_offer_lists_every_h264_profile_at_the_streams_level_then_vp8() {
        let offered = offer(&[Codec::H264, Codec::Vp8], 0x28);
        let lines: Vec<(u8, &str)> = offered
            .iter()
            .map(|p| (p.payload_type, p.rtp_codec.sdp_fmtp_line.as_str()))
            .collect();
        assert_eq!(
            lines,
            [
                (
                    96,
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e028"
                ),
                (
                    98,
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=420028"
                ),
                (
                    99,
                    "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d0028"
                ),
                (97, ""),
            ]
        );
        let vp8_first = offer(&[Codec::Vp8, Codec::H264], 0x1f);
        assert_eq!(codec_of(&vp8_first[0]), Some(Codec::Vp8));
        assert_eq!(codec_of(&vp8_first[1]), Some(Codec::H264));
    }

    #[test]
    fn the_answers_first_offered_payload_type_wins() {
        let offered = offer(&[Codec::H264, Codec::Vp8], 0x1f);
        // Firefox without H.264: VP8 only, plus codecs we never offered.
        let firefox = answer(9, "120 97", "a=rtpmap:97 VP8/90000\r\n");
        assert_eq!(
            codec_of(&chosen(&firefox, &offered).unwrap()),
            Some(Codec::Vp8)
        );
        // An answerer that decodes only Baseline picks 98, which we stream as well.
        let baseline = answer(9, "98 97", "");
        assert_eq!(chosen(&baseline, &offered).unwrap().payload_type, 98);
        let chromium = answer(9, "96 98 99 97", "");
        assert_eq!(chosen(&chromium, &offered).unwrap().payload_type, 96);
    }

    #[test]
    fn an_answer_without_an_offered_codec_is_refused_clearly() {
        let offered = offer(&[Codec::H264, Codec::Vp8], 0x1f);
        let av1_only = answer(9, "45", "a=rtpmap:45 AV1/90000\r\n");
        let error = chosen(&av1_only, &offered).unwrap_err();
        assert!(matches!(error, AnswerError::NoCommonCodec { .. }));
        let text = error.to_string();
        assert!(
            text.contains("H264/96 (profile-level-id=42e01f)") && text.contains("VP8/97"),
            "{text}"
        );
        let rejected = answer(0, "96", "");
        assert!(matches!(
            chosen(&rejected, &offered),
            Err(AnswerError::NoCommonCodec { .. })
        ));
        assert!(matches!(
            chosen("not sdp", &offered),
            Err(AnswerError::NotSdp(_))
        ));
    }
}
