//! Encoder benchmark with picture quality: for each encoder at 1280x720 and 1920x1080, 3 Mbit/s,
//! 30 fps, on the same frames of the built-in renderer's orbiting scene, the encode time per
//! frame, the bits produced, and how close the decoded pictures are to their frames (PSNR of Y
//! and of Y/U/V weighted 6:1:1, SSIM of Y; mean and worst frame).
//!
//! `cargo bench -p openspace-agent --bench encoder_quality` (add `--features gstreamer` for
//! GStreamer's x264enc and vp8enc beside openh264 and libvpx)
//!
//! Two passes, so decoding and measuring never run between the encodes being timed: the first
//! renders each frame and times every encoder on it, keeping what they produced; the second
//! renders the same frames again (checked equal by hash) and decodes and compares. Each frame
//! carries the built-in instance's stamp (frame number and time), and each decoded picture is
//! compared with the frame whose number its stamp reads, so an encoder that skips or delays
//! frames cannot shift the comparison.

mod decode;
mod metrics;

use std::collections::VecDeque;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

use openspace_agent::media::encoder::{
    Codec, EncoderSettings, H264Encoder, VideoEncoder, Vp8Encoder,
};
use openspace_agent::media::frame::I420Frame;
use openspace_agent::media::renderer::{draw_stamp, read_stamp, Renderer};

use metrics::{FrameQuality, Summary};

const FRAMES: usize = 300;
const WARM_UP: usize = 30;
const FPS: f64 = 30.0;
/// Source frames kept for pairing in the second pass: a stamp may name a frame this far back.
const KEPT: usize = 8;

fn settings() -> EncoderSettings {
    EncoderSettings {
        bitrate_bps: 3_000_000,
        fps: FPS as f32,
        threads: 2,
    }
}

/// Every encoder of the comparison, set up as `media.rs` sets them up, in the order.
fn encoders() -> Vec<(&'static str, Box<dyn VideoEncoder>)> {
    let mut encoders: Vec<(&'static str, Box<dyn VideoEncoder>)> = vec![(
        "H.264 openh264",
        Box::new(H264Encoder::new(settings()).expect("openh264")),
    )];
    #[cfg(feature = "gstreamer")]
    encoders.push(("H.264 gst:x264enc", gst("x264enc")));
    encoders.push((
        "VP8 libvpx",
        Box::new(Vp8Encoder::new(settings()).expect("libvpx")),
    ));
    #[cfg(feature = "gstreamer")]
    encoders.push(("VP8 gst:vp8enc", gst("vp8enc")));
    encoders
}

#[cfg(feature = "gstreamer")]
fn gst(element: &str) -> Box<dyn VideoEncoder> {
    use openspace_agent::media::encoder::gst::GstEncoder;
    Box::new(GstEncoder::new(element, settings()).expect(element))
}

/// The stamp's time field of frame `n`: the frame's time in ms, so number and time must agree
/// for a stamp to count as read.
fn stamp_time(n: usize) -> u32 {
    ((n as f64 * 1000.0 / FPS) as u32) & 0xFF_FFFF
}

/// Renders frame `n` of the sequence into `frame`: the camera turns a little every frame, as a
/// viewer would turn it (the same motion as `media.rs`), and the stamp goes in the corner, as
/// the built-in instance draws it.
fn render(renderer: &mut Renderer, frame: &mut I420Frame, n: usize) {
    renderer.camera_mut().orbit(0.01, 0.002);
    renderer.render(n as f64 / FPS, frame);
    draw_stamp(frame, n as u32, stamp_time(n));
}

fn hash(frame: &I420Frame) -> u64 {
    let mut hasher = DefaultHasher::new();
    frame.data.hash(&mut hasher);
    hasher.finish()
}

/// What one encoder did with the sequence.
struct Run {
    name: &'static str,
    codec: Codec,
    /// Encode time of each measured frame.
    times: Vec<Duration>,
    /// Bytes produced for the measured frames.
    bytes: usize,
    /// What it produced for each frame, warm-up included (the decoder needs all of it).
    produced: Vec<Option<Vec<u8>>>,
}

/// How the decoded pictures of one run compared with their frames.
#[derive(Default)]
struct Comparison {
    /// Each measured frame's picture against it.
    quality: Vec<FrameQuality>,
    /// Measured frames the encoder gave nothing for.
    skipped: usize,
    /// Measured frames whose encoding the decoder gave no picture for.
    undecoded: usize,
    /// Pictures, of measured frames' encodings, whose stamp named an earlier frame.
    late: usize,
    /// Pictures, of measured frames' encodings, whose stamp could not be read (compared with
    /// the frame just encoded).
    unstamped: usize,
}

/// First pass: every encoder on every frame, timed one after another on the same frame. Also
/// gives each frame's hash, for the second pass to check it renders the same frames.
fn encode_all(width: u32, height: u32) -> (Vec<Run>, Vec<u64>) {
    let (mut runs, mut encoders): (Vec<Run>, Vec<Box<dyn VideoEncoder>>) = encoders()
        .into_iter()
        .map(|(name, encoder)| {
            let run = Run {
                name,
                codec: encoder.codec(),
                times: Vec::with_capacity(FRAMES),
                bytes: 0,
                produced: Vec::with_capacity(FRAMES + WARM_UP),
            };
            (run, encoder)
        })
        .unzip();
    let mut renderer = Renderer::new(width, height);
    let mut frame = I420Frame::new(width, height);
    let mut hashes = Vec::with_capacity(FRAMES + WARM_UP);
    for n in 0..FRAMES + WARM_UP {
        render(&mut renderer, &mut frame, n);
        hashes.push(hash(&frame));
        for (run, encoder) in runs.iter_mut().zip(&mut encoders) {
            let t = Instant::now();
            let out = encoder.encode(&frame, false).expect("encode");
            let took = t.elapsed();
            let out = out.map(|o| o.data);
            if n >= WARM_UP {
                run.times.push(took);
                run.bytes += out.as_ref().map_or(0, Vec::len);
            }
            run.produced.push(out);
        }
    }
    (runs, hashes)
}

/// Second pass: the same frames again, each run's output decoded and every picture compared
/// with the frame its stamp names.
fn compare_all(width: u32, height: u32, runs: &[Run], hashes: &[u64]) -> Vec<Comparison> {
    let mut decoders: Vec<_> = runs
        .iter()
        .map(|run| decode::decoder_for(run.codec).expect("decoder"))
        .collect();
    let mut comparisons: Vec<Comparison> = runs.iter().map(|_| Comparison::default()).collect();
    let mut renderer = Renderer::new(width, height);
    // (frame number, frame), the last KEPT frames.
    let mut kept: VecDeque<(usize, I420Frame)> = VecDeque::with_capacity(KEPT);
    for (n, &expected) in hashes.iter().enumerate() {
        let mut frame = if kept.len() == KEPT {
            kept.pop_front().map(|(_, f)| f).expect("kept")
        } else {
            I420Frame::new(width, height)
        };
        render(&mut renderer, &mut frame, n);
        assert_eq!(hash(&frame), expected, "frame {n} rendered differently");
        kept.push_back((n, frame));
        for ((run, decoder), comparison) in runs.iter().zip(&mut decoders).zip(&mut comparisons) {
            // The counts are of measured frames, as the timings and bytes are.
            let measured = usize::from(n >= WARM_UP);
            let Some(encoded) = &run.produced[n] else {
                comparison.skipped += measured;
                continue;
            };
            let Some(picture) = decoder.decode(encoded).expect("decode") else {
                comparison.undecoded += measured;
                continue;
            };
            let stamp = read_stamp(
                picture.y(),
                picture.width as usize,
                picture.width,
                picture.height,
            );
            let source = match stamp {
                Some((number, time)) if stamp_time(number as usize) == time => number as usize,
                _ => {
                    comparison.unstamped += measured;
                    n
                }
            };
            comparison.late += measured * usize::from(source < n);
            if source < WARM_UP {
                continue;
            }
            let (_, frame) = kept.iter().find(|(k, _)| *k == source).unwrap_or_else(|| {
                panic!("{}: frame {n}'s picture is of frame {source}", run.name)
            });
            comparison
                .quality
                .push(FrameQuality::measure(frame, &picture).expect("comparable"));
        }
    }
    comparisons
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    println!(
        "| {FRAMES} frames after {WARM_UP} of warm-up, 3 Mbit/s target, 30 fps, 2 threads | encode p50 / p99 | produced at 30 fps | pictures compared (skipped, late, unstamped) | PSNR Y mean / min | PSNR YUV 6:1:1 mean / min | SSIM Y mean / min |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (width, height) in [(1280, 720), (1920, 1080)] {
        let (mut runs, hashes) = encode_all(width, height);
        let comparisons = compare_all(width, height, &runs, &hashes);
        for (run, c) in runs.iter_mut().zip(&comparisons) {
            run.times.sort();
            let mbps = run.bytes as f64 * 8.0 * FPS / FRAMES as f64 / 1e6;
            let summary = |f: fn(&FrameQuality) -> f64| {
                Summary::of(c.quality.iter().map(f))
                    .map_or("-".to_owned(), |s| format!("{:.2} / {:.2}", s.mean, s.min))
            };
            let ssim = Summary::of(c.quality.iter().map(|q| q.ssim_y))
                .map_or("-".to_owned(), |s| format!("{:.4} / {:.4}", s.mean, s.min));
            println!(
                "| {width}x{height} {} | {:.2} / {:.2} ms | {mbps:.2} Mbit/s | {} ({}, {}, {}){} | {} dB | {} dB | {ssim} |",
                run.name,
                ms(percentile(&run.times, 0.5)),
                ms(percentile(&run.times, 0.99)),
                c.quality.len(),
                c.skipped,
                c.late,
                c.unstamped,
                if c.undecoded > 0 {
                    format!(", {} not decoded", c.undecoded)
                } else {
                    String::new()
                },
                summary(|q| q.psnr_y),
                summary(FrameQuality::psnr_yuv),
            );
        }
    }
}
