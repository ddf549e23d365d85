//! Video encoders behind one trait, so a hardware encoder (NVENC) can join later. Each encoder
//! runs on a thread of its own (see `media::pipeline`); these types are plain and synchronous.

mod factory;
#[cfg(feature = "gstreamer")]
pub mod gst;
mod h264;
mod vp8;

use std::fmt;
use std::str::FromStr;

pub use factory::{Backend, EncoderFactory};
pub use h264::{level_idc as h264_level_idc, H264Encoder};
pub use vp8::Vp8Encoder;

use super::frame::I420Frame;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// H.264 constrained baseline, packetization-mode=1.
    H264,
    Vp8,
}

impl Codec {
    /// Every codec the agent knows, in its default order of preference.
    pub const ALL: [Codec; 2] = [Codec::H264, Codec::Vp8];
}

/// A codec name that is neither `H264` nor `VP8`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?}: use H264 or VP8")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;

    /// `H264`/`h264`/`H.264` or `VP8`/`vp8`, as SESSION's `codec`, `--codec` and SDP's rtpmap
    /// write them.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.trim().to_ascii_uppercase().as_str() {
            "H264" | "H.264" => Ok(Codec::H264),
            "VP8" => Ok(Codec::Vp8),
            _ => Err(UnknownCodec(name.chars().take(32).collect())),
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Codec::H264 => "H264",
            Codec::Vp8 => "VP8",
        })
    }
}

/// Settings shared by every encoder of an instance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSettings {
    pub bitrate_bps: u32,
    pub fps: f32,
    pub threads: u16,
}

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("{codec} encoder could not be created: {reason}")]
    Create { codec: Codec, reason: String },
    #[error("{codec} encoding failed: {reason}")]
    Encode { codec: Codec, reason: String },
    #[error("this agent cannot encode {0}")]
    Unavailable(Codec),
    #[error("encoder {backend}: {reason}")]
    Backend { backend: String, reason: String },
}

/// One encoded picture: Annex-B NAL units for H.264, one frame for VP8.
pub struct Encoded {
    pub data: Vec<u8>,
    pub keyframe: bool,
}

pub trait VideoEncoder: Send {
    fn codec(&self) -> Codec;

    /// Encodes one frame; `keyframe` forces an intra frame. `None` when the encoder skipped it.
    /// A frame of a new size reconfigures the encoder (and starts with a keyframe).
    fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
    ) -> Result<Option<Encoded>, EncoderError>;
}

/// A software encoder for `codec` (openh264 or libvpx). Most callers want an
/// [`EncoderFactory`], which knows which codecs this machine can encode.
pub fn software_encoder(
    codec: Codec,
    settings: EncoderSettings,
) -> Result<Box<dyn VideoEncoder>, EncoderError> {
    match codec {
        Codec::H264 => Ok(Box::new(H264Encoder::new(settings)?)),
        Codec::Vp8 => Ok(Box::new(Vp8Encoder::new(settings)?)),
    }
}
