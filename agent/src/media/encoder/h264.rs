//! H.264 through Cisco's openh264 (built from source by the `openh264` crate; with `nasm` on the
//! PATH at build time it uses its SIMD assembly, about 3x faster).

use openh264::encoder::{
    BitRate, Complexity, Encoder, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, Profile,
    RateControlMode, UsageType,
};
use openh264::formats::YUVSource;
use openh264::OpenH264API;

use super::{Codec, Encoded, EncoderError, EncoderSettings, VideoEncoder};
use crate::media::frame::I420Frame;

pub struct H264Encoder {
    encoder: Encoder,
    /// The first frame after a (re)configuration must be an IDR for new decoders.
    size: Option<(u32, u32)>,
}

impl H264Encoder {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncoderError> {
        let config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(settings.bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(settings.fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .usage_type(UsageType::CameraVideoRealTime)
            .profile(Profile::Baseline)
            .complexity(Complexity::Low)
            // Frames are dropped upstream when we fall behind; the encoder must not drop more.
            .skip_frames(false)
            // Keyframes on demand (new viewer, PLI/FIR), as the original's infinite GOP; plus a
            // slow periodic one so a lost keyframe request never freezes a viewer for long.
            .intra_frame_period(IntraFramePeriod::from_num_frames(300))
            .num_threads(settings.threads);
        let encoder =
            Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| {
                EncoderError::Create {
                    codec: Codec::H264,
                    reason: e.to_string(),
                }
            })?;
        Ok(Self {
            encoder,
            size: None,
        })
    }
}

/// Borrowed view of our frame in the shape openh264 reads.
struct Source<'a>(&'a I420Frame);

impl YUVSource for Source<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.0.width as usize, self.0.height as usize)
    }

    fn strides(&self) -> (usize, usize, usize) {
        let c = self.0.chroma_width() as usize;
        (self.0.width as usize, c, c)
    }

    fn y(&self) -> &[u8] {
        self.0.y()
    }

    fn u(&self) -> &[u8] {
        self.0.u()
    }

    fn v(&self) -> &[u8] {
        self.0.v()
    }
}

impl VideoEncoder for H264Encoder {
    fn codec(&self) -> Codec {
        Codec::H264
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
    ) -> Result<Option<Encoded>, EncoderError> {
        let size = (frame.width, frame.height);
        if keyframe || self.size != Some(size) {
            self.encoder.force_intra_frame();
            self.size = Some(size);
        }
        let stream = self
            .encoder
            .encode(&Source(frame))
            .map_err(|e| EncoderError::Encode {
                codec: Codec::H264,
                reason: e.to_string(),
            })?;
        let frame_type = stream.frame_type();
        if matches!(frame_type, FrameType::Skip | FrameType::Invalid) {
            return Ok(None);
        }
        Ok(Some(Encoded {
            data: stream.to_vec(),
            keyframe: matches!(frame_type, FrameType::IDR | FrameType::I),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> EncoderSettings {
        EncoderSettings {
            bitrate_bps: 2_000_000,
            fps: 30.0,
            threads: 1,
        }
    }

    fn nal_types(annex_b: &[u8]) -> Vec<u8> {
        let mut types = Vec::new();
        let mut i = 0;
        while i + 3 < annex_b.len() {
            if annex_b[i..i + 3] == [0, 0, 1] {
                types.push(annex_b[i + 3] & 0x1f);
                i += 3;
            } else {
                i += 1;
            }
        }
        types
    }

    #[test]
    fn first_frame_is_an_idr_with_parameter_sets_and_keyframes_can_be_forced() {
        let mut encoder = H264Encoder::new(settings()).unwrap();
        let mut frame = I420Frame::new(320, 240);
        let first = encoder.encode(&frame, false).unwrap().expect("a frame");
        assert!(first.keyframe);
        let types = nal_types(&first.data);
        assert!(
            types.contains(&7) && types.contains(&8) && types.contains(&5),
            "SPS, PPS, IDR: {types:?}"
        );
        frame.data[1000] = 200;
        let second = encoder.encode(&frame, false).unwrap().expect("a frame");
        assert!(!second.keyframe);
        let forced = encoder.encode(&frame, true).unwrap().expect("a frame");
        assert!(forced.keyframe && nal_types(&forced.data).contains(&5));
    }

    #[test]
    fn a_new_size_starts_with_a_keyframe_at_that_size() {
        let mut encoder = H264Encoder::new(settings()).unwrap();
        encoder.encode(&I420Frame::new(320, 240), false).unwrap();
        encoder.encode(&I420Frame::new(320, 240), false).unwrap();
        let resized = encoder
            .encode(&I420Frame::new(640, 360), false)
            .unwrap()
            .expect("a frame");
        assert!(resized.keyframe);
    }
}
