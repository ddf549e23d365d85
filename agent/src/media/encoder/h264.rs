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

/// Level limits of H.264 Table A-1: (level_idc, MaxMBPS macroblocks/s, MaxFS macroblocks,
/// MaxBR kbit/s). Level 1b is left out: openh264 never picks it.
const LEVELS: [(u8, u64, u64, u64); 16] = [
    (10, 1_485, 99, 64),
    (11, 3_000, 396, 192),
    (12, 6_000, 396, 384),
    (13, 11_880, 396, 768),
    (20, 11_880, 396, 2_000),
    (21, 19_800, 792, 4_000),
    (22, 20_250, 1_620, 4_000),
    (30, 40_500, 1_620, 10_000),
    (31, 108_000, 3_600, 14_000),
    (32, 216_000, 5_120, 20_000),
    (40, 245_760, 8_192, 20_000),
    (41, 245_760, 8_192, 50_000),
    (42, 522_240, 8_704, 50_000),
    (50, 589_824, 22_080, 135_000),
    (51, 983_040, 36_864, 240_000),
    (52, 2_073_600, 36_864, 240_000),
];

/// The H.264 `level_idc` (10 = 1.0, 31 = 3.1, 51 = 5.1) of our stream at `width` x `height`
/// pixels, `fps` frames/s and `bitrate_bps` bits/s: the lowest level of Table A-1 whose frame
/// size (also per side: at most sqrt(8 * MaxFS) macroblocks), macroblock rate and bitrate hold
/// it, which is what openh264 writes into its SPS (tested below). Past level 5.2: 52.
pub fn level_idc(width: u32, height: u32, fps: f32, bitrate_bps: u32) -> u8 {
    let (mbs_wide, mbs_high) = (
        u64::from(width.div_ceil(16)),
        u64::from(height.div_ceil(16)),
    );
    let frame = mbs_wide * mbs_high;
    let rate = (frame as f64 * f64::from(fps.max(1.0))).ceil() as u64;
    let kbps = u64::from(bitrate_bps).div_ceil(1000);
    LEVELS
        .iter()
        .find(|(_, max_rate, max_frame, max_kbps)| {
            let max_side = ((8 * max_frame) as f64).sqrt() as u64;
            frame <= *max_frame
                && rate <= *max_rate
                && kbps <= *max_kbps
                && mbs_wide <= max_side
                && mbs_high <= max_side
        })
        .map_or(52, |(level, ..)| *level)
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

    /// (profile_idc, constraint flags, level_idc) of the first SPS in `annex_b`.
    fn sps_profile_level(annex_b: &[u8]) -> Option<(u8, u8, u8)> {
        annex_b
            .windows(7)
            .find(|w| w[..3] == [0, 0, 1] && w[3] & 0x1f == 7)
            .map(|w| (w[4], w[5], w[6]))
    }

    #[test]
    fn the_level_we_compute_is_the_one_openh264_writes() {
        for (width, height) in [
            (320, 240),
            (640, 360),
            (960, 540),
            (1280, 720),
            (1920, 1080),
            (2560, 1440),
            (3840, 2160),
        ] {
            for bitrate_bps in [1_000_000, 3_000_000] {
                let settings = EncoderSettings {
                    bitrate_bps,
                    fps: 30.0,
                    threads: 1,
                };
                let mut encoder = H264Encoder::new(settings).unwrap();
                let frame = encoder
                    .encode(&I420Frame::new(width, height), false)
                    .unwrap()
                    .expect("a frame");
                let (profile, constraints, level) = sps_profile_level(&frame.data).expect("an SPS");
                // Constrained baseline: profile 66 with constraint_set1 (RFC 6184 Table 5).
                assert_eq!((profile, constraints & 0x40), (0x42, 0x40));
                assert_eq!(
                    level,
                    level_idc(width, height, 30.0, bitrate_bps),
                    "{width}x{height} at {bitrate_bps} bit/s"
                );
            }
        }
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
