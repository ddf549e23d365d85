//! Encoders through GStreamer (`--encoder gst:ELEMENT`), for the hardware encoders GPU nodes have
//! (`nvh264enc`, NVIDIA's, which the original OpenSpace streamer used; `vah264enc`, VA-API) and
//! for `x264enc`/`vp8enc` on the CPU, which is how this path is tested.
//!
//! One pipeline per encoder, built for the current picture size (a new size builds a new one,
//! which starts with a keyframe as every encoder here does):
//! `appsrc (I420) ! videoconvert ! ELEMENT ! appsink` of Annex-B access units
//! (H.264) or frames (VP8), for the packetizer. Keyframes on request through an upstream
//! force-key-unit event (GstVideoEncoder honours it on the next frame).

use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::{Codec, Encoded, EncoderError, EncoderSettings, VideoEncoder};
use crate::media::frame::I420Frame;

/// How long `encode` waits for the element's output of one frame before it counts as skipped
/// (the encoders set up here emit each frame as soon as it is pushed).
const OUTPUT_WAIT: Duration = Duration::from_millis(500);

/// Low-delay settings per element, each applied only when the element has that property:
/// (property, value as `gst-launch` would write it). `{kbps}`, `{bps}` and `{threads}` are
/// filled in from the agent's settings. No B-frames, no lookahead, CBR, keyframes at most every
/// 300 frames (as openh264 here) and on request.
const PROPERTIES: &[(&str, &[(&str, &str)])] = &[
    (
        "x264enc",
        &[
            ("tune", "zerolatency"),
            ("speed-preset", "ultrafast"),
            ("bitrate", "{kbps}"),
            ("key-int-max", "300"),
            ("bframes", "0"),
            ("threads", "{threads}"),
            ("byte-stream", "true"),
        ],
    ),
    (
        "nvh264enc",
        &[
            ("preset", "low-latency-hq"),
            ("rc-mode", "cbr"),
            ("bitrate", "{kbps}"),
            ("gop-size", "300"),
            ("bframes", "0"),
            ("zerolatency", "true"),
        ],
    ),
    (
        "vah264enc",
        &[
            ("rate-control", "cbr"),
            ("bitrate", "{kbps}"),
            ("key-int-max", "300"),
            ("b-frames", "0"),
        ],
    ),
    (
        "vp8enc",
        &[
            ("deadline", "1"),
            ("end-usage", "cbr"),
            ("target-bitrate", "{bps}"),
            ("cpu-used", "8"),
            ("lag-in-frames", "0"),
            ("keyframe-max-dist", "300"),
            ("threads", "{threads}"),
        ],
    ),
];

/// The codec a GStreamer encoder element produces, from its source pad template.
///
/// # Errors
/// When GStreamer cannot start, the element does not exist on this machine (the error lists
/// the H.264 and VP8 encoders that do), or it produces neither H.264 nor VP8.
pub fn codec_of(element: &str) -> Result<Codec, EncoderError> {
    gst::init().map_err(|e| unavailable(element, format!("GStreamer: {e}")))?;
    let factory = gst::ElementFactory::find(element).ok_or_else(|| {
        unavailable(
            element,
            format!(
                "no such element here; video encoders present: {}",
                present().join(", ")
            ),
        )
    })?;
    produced(&factory)
        .ok_or_else(|| unavailable(element, "it encodes neither H.264 nor VP8".into()))
}

fn unavailable(element: &str, reason: String) -> EncoderError {
    EncoderError::Backend {
        backend: format!("gst:{element}"),
        reason,
    }
}

fn produced(factory: &gst::ElementFactory) -> Option<Codec> {
    factory
        .static_pad_templates()
        .iter()
        .filter(|t| t.direction() == gst::PadDirection::Src)
        .find_map(|t| {
            let caps = t.caps();
            caps.iter().find_map(|s| match s.name().as_str() {
                "video/x-h264" => Some(Codec::H264),
                "video/x-vp8" => Some(Codec::Vp8),
                _ => None,
            })
        })
}

/// The H.264 and VP8 encoder elements this machine has, e.g. `x264enc (H264)`.
pub fn present() -> Vec<String> {
    gst::ElementFactory::factories_with_type(
        gst::ElementFactoryType::VIDEO_ENCODER,
        gst::Rank::NONE,
    )
    .iter()
    .filter_map(|f| produced(f).map(|codec| format!("{} ({codec})", f.name())))
    .collect()
}

/// An encoder running GStreamer element `element`.
pub struct GstEncoder {
    element: String,
    codec: Codec,
    settings: EncoderSettings,
    running: Option<Running>,
    frames: u64,
    /// The last output was skipped to catch up (see `encode`): the next frame is a keyframe.
    resync: bool,
}

struct Running {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    size: (u32, u32),
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

impl GstEncoder {
    /// # Errors
    /// As [`codec_of`].
    pub fn new(element: &str, settings: EncoderSettings) -> Result<Self, EncoderError> {
        let codec = codec_of(element)?;
        Ok(Self {
            element: element.to_owned(),
            codec,
            settings,
            running: None,
            frames: 0,
            resync: false,
        })
    }

    fn error(&self, reason: impl std::fmt::Display) -> EncoderError {
        EncoderError::Encode {
            codec: self.codec,
            reason: format!("gst:{}: {reason}", self.element),
        }
    }

    /// A pipeline for pictures of `width` x `height`, playing.
    fn start(&self, width: u32, height: u32) -> Result<Running, EncoderError> {
        let fps = self.settings.fps.round().max(1.0) as u32;
        let tail = match self.codec {
            // Annex-B access units; the encoders here emit their parameter sets with every IDR.
            Codec::H264 => "video/x-h264,stream-format=byte-stream,alignment=au ! ",
            Codec::Vp8 => "",
        };
        let description = format!(
            "appsrc name=src is-live=true format=time \
             caps=video/x-raw,format=I420,width={width},height={height},framerate={fps}/1 ! \
             videoconvert ! {} name=enc ! {tail}appsink name=sink sync=false",
            self.element
        );
        let pipeline = gst::parse::launch(&description)
            .map_err(|e| self.error(e))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| self.error("not a pipeline"))?;
        let by_name = |name: &str| {
            pipeline
                .by_name(name)
                .ok_or_else(|| self.error(format!("no {name}")))
        };
        let encoder = by_name("enc")?;
        self.configure(&encoder);
        let src = by_name("src")?
            .downcast::<gst_app::AppSrc>()
            .map_err(|_| self.error("src is no appsrc"))?;
        let sink = by_name("sink")?
            .downcast::<gst_app::AppSink>()
            .map_err(|_| self.error("sink is no appsink"))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| self.error(format!("cannot start: {e}")))?;
        Ok(Running {
            pipeline,
            src,
            sink,
            size: (width, height),
        })
    }

    fn configure(&self, encoder: &gst::Element) {
        let Some((_, properties)) = PROPERTIES.iter().find(|(name, _)| *name == self.element)
        else {
            // Unknown elements get the bitrate in kbit/s, the common convention.
            if encoder.has_property("bitrate") {
                encoder.set_property_from_str(
                    "bitrate",
                    &(self.settings.bitrate_bps / 1000).to_string(),
                );
            }
            return;
        };
        for (property, value) in *properties {
            if !encoder.has_property(property) {
                continue;
            }
            let value = value
                .replace("{kbps}", &(self.settings.bitrate_bps / 1000).to_string())
                .replace("{bps}", &self.settings.bitrate_bps.to_string())
                .replace("{threads}", &self.settings.threads.to_string());
            encoder.set_property_from_str(property, &value);
        }
    }
}

impl VideoEncoder for GstEncoder {
    fn codec(&self) -> Codec {
        self.codec
    }

    fn encode(
        &mut self,
        frame: &I420Frame,
        keyframe: bool,
    ) -> Result<Option<Encoded>, EncoderError> {
        let size = (frame.width, frame.height);
        if self.running.as_ref().is_none_or(|r| r.size != size) {
            self.running = None; // stops the old pipeline first
            self.running = Some(self.start(frame.width, frame.height)?);
        }
        let fps = f64::from(self.settings.fps.max(1.0));
        let pts = gst::ClockTime::from_nseconds((self.frames as f64 * 1e9 / fps) as u64);
        self.frames += 1;
        let Some(running) = &self.running else {
            return Ok(None);
        };
        if keyframe || std::mem::take(&mut self.resync) {
            let request = gstreamer_video::UpstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            running.sink.send_event(request);
        }
        let mut buffer = gst::Buffer::from_slice(frame.data.clone());
        if let Some(buffer) = buffer.get_mut() {
            buffer.set_pts(pts);
        }
        running
            .src
            .push_buffer(buffer)
            .map_err(|e| self.error(format!("push: {e}")))?;
        let wait = gst::ClockTime::from_mseconds(OUTPUT_WAIT.as_millis() as u64);
        let Some(mut sample) = running.sink.try_pull_sample(wait) else {
            // Late (a stalled machine): this frame's output comes with a later call.
            return Ok(None);
        };
        // One output per call keeps a pipeline that was once late a frame behind for good. So
        // when the output is an earlier frame's, take the newest (waiting for this frame's); the
        // outputs skipped on the way are lost, so unless the newest is a keyframe it is dropped
        // too and the next frame is forced to be one, as after a lost packet (PLI).
        let is_stale = |sample: &gst::Sample| sample.buffer().and_then(|b| b.pts()) < Some(pts);
        if is_stale(&sample) {
            while let Some(newer) = running.sink.try_pull_sample(gst::ClockTime::ZERO) {
                sample = newer;
            }
            if is_stale(&sample) {
                match running.sink.try_pull_sample(wait) {
                    Some(current) => sample = current,
                    None => {
                        self.resync = true;
                        return Ok(None);
                    }
                }
            }
            let is_keyframe = sample
                .buffer()
                .is_some_and(|b| !b.flags().contains(gst::BufferFlags::DELTA_UNIT));
            if !is_keyframe {
                self.resync = true;
                return Ok(None);
            }
        }
        let buffer = sample
            .buffer()
            .ok_or_else(|| self.error("a sample without a buffer"))?;
        let map = buffer.map_readable().map_err(|e| self.error(e))?;
        Ok(Some(Encoded {
            data: map.as_slice().to_vec(),
            keyframe: !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
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

    /// A frame with a moving bright square, so successive frames differ.
    fn frame(width: u32, height: u32, n: u32) -> I420Frame {
        let mut frame = I420Frame::new(width, height);
        let (y, _, _) = frame.planes_mut();
        for row in 0..height.min(32) {
            for col in 0..32.min(width) {
                let x = (col + n * 4) % width;
                y[(row * width + x) as usize] = 235;
            }
        }
        frame
    }

    fn nal_types(annex_b: &[u8]) -> Vec<u8> {
        annex_b
            .windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| w[3] & 0x1f)
            .collect()
    }

    #[test]
    fn x264enc_keyframes_come_first_on_request_and_after_a_resize() {
        let mut encoder = GstEncoder::new("x264enc", settings()).expect("x264enc is installed");
        assert_eq!(encoder.codec(), Codec::H264);
        let first = encoder
            .encode(&frame(320, 240, 0), false)
            .unwrap()
            .expect("a frame");
        assert!(first.keyframe);
        let types = nal_types(&first.data);
        assert!(
            types.contains(&7) && types.contains(&8) && types.contains(&5),
            "{types:?}"
        );
        let second = encoder
            .encode(&frame(320, 240, 1), false)
            .unwrap()
            .expect("a frame");
        assert!(!second.keyframe && !nal_types(&second.data).contains(&5));
        let forced = encoder
            .encode(&frame(320, 240, 2), true)
            .unwrap()
            .expect("a frame");
        let types = nal_types(&forced.data);
        assert!(
            forced.keyframe && types.contains(&7) && types.contains(&5),
            "{types:?}"
        );
        let resized = encoder
            .encode(&frame(640, 360, 3), false)
            .unwrap()
            .expect("a frame");
        assert!(resized.keyframe);
    }

    #[test]
    fn vp8enc_encodes_vp8_with_keyframes_on_request() {
        let mut encoder = GstEncoder::new("vp8enc", settings()).expect("vp8enc is installed");
        assert_eq!(encoder.codec(), Codec::Vp8);
        let first = encoder
            .encode(&frame(320, 240, 0), false)
            .unwrap()
            .expect("a frame");
        // VP8 keyframes start with the frame tag's key bit clear and the start code 9d 01 2a.
        assert!(first.keyframe && first.data[0] & 1 == 0 && first.data[3..6] == [0x9d, 0x01, 0x2a]);
        let second = encoder
            .encode(&frame(320, 240, 1), false)
            .unwrap()
            .expect("a frame");
        assert!(!second.keyframe && second.data[0] & 1 == 1);
        let forced = encoder
            .encode(&frame(320, 240, 2), true)
            .unwrap()
            .expect("a frame");
        assert!(forced.keyframe && forced.data[0] & 1 == 0);
    }

    #[test]
    fn an_element_that_is_not_here_is_refused_with_the_ones_that_are() {
        let error = GstEncoder::new("nosuchenc", settings())
            .err()
            .expect("refused");
        let text = error.to_string();
        assert!(
            text.contains("gst:nosuchenc") && text.contains("x264enc (H264)"),
            "{text}"
        );
        let not_video = GstEncoder::new("identity", settings())
            .err()
            .expect("refused");
        assert!(not_video.to_string().contains("neither H.264 nor VP8"));
    }
}
