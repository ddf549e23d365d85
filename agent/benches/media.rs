//! Media benchmarks: render and encode time per frame of the built-in renderer's picture.
//!
//! `cargo bench -p openspace-agent --bench media` (add `--features gstreamer` for GStreamer's
//! x264enc and vp8enc on the same frames)

use std::time::{Duration, Instant};

use openspace_agent::media::encoder::{EncoderSettings, H264Encoder, VideoEncoder, Vp8Encoder};
use openspace_agent::media::frame::I420Frame;
use openspace_agent::media::renderer::Renderer;

const FRAMES: usize = 300;
const WARM_UP: usize = 30;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[(((sorted.len() - 1) as f64) * p).round() as usize]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    println!("| benchmark | p50 | p99 |");
    println!("|---|---|---|");
    for (w, h) in [(1280, 720), (1920, 1080)] {
        let settings = EncoderSettings {
            bitrate_bps: 3_000_000,
            fps: 30.0,
            threads: 2,
        };
        #[allow(unused_mut)] // GStreamer's encoders join with --features gstreamer
        let mut encoders: Vec<(&str, Box<dyn VideoEncoder>)> = vec![
            (
                "H.264 openh264",
                Box::new(H264Encoder::new(settings).expect("encoder")),
            ),
            (
                "VP8 libvpx",
                Box::new(Vp8Encoder::new(settings).expect("encoder")),
            ),
        ];
        #[cfg(feature = "gstreamer")]
        {
            use openspace_agent::media::encoder::gst::GstEncoder;
            for (name, element) in [
                ("H.264 gst:x264enc", "x264enc"),
                ("VP8 gst:vp8enc", "vp8enc"),
            ] {
                encoders.push((
                    name,
                    Box::new(GstEncoder::new(element, settings).expect(element)),
                ));
            }
        }
        let mut renderer = Renderer::new(w, h);
        let mut frame = I420Frame::new(w, h);
        let mut render = Vec::new();
        let mut encode = vec![Vec::new(); encoders.len()];
        let mut bytes = vec![0usize; encoders.len()];
        for i in 0..FRAMES + WARM_UP {
            // The camera turns as a viewer would turn it, so every frame has real motion.
            renderer.camera_mut().orbit(0.01, 0.002);
            let t = Instant::now();
            renderer.render(i as f64 / 30.0, &mut frame);
            let rendered = t.elapsed();
            let measured = i >= WARM_UP;
            if measured {
                render.push(rendered);
            }
            for (k, (_, encoder)) in encoders.iter_mut().enumerate() {
                let t = Instant::now();
                let out = encoder.encode(&frame, false).expect("encode");
                if measured {
                    encode[k].push(t.elapsed());
                    bytes[k] += out.map_or(0, |o| o.data.len());
                }
            }
        }
        render.sort();
        println!(
            "| render {w}x{h} (built-in scene), n={FRAMES} | {} | {} |",
            ms(percentile(&render, 0.5)),
            ms(percentile(&render, 0.99))
        );
        for (k, (name, _)) in encoders.iter().enumerate() {
            encode[k].sort();
            let mbps = bytes[k] as f64 * 8.0 * 30.0 / FRAMES as f64 / 1e6;
            println!(
                "| encode {w}x{h} {name}, 3 Mbit/s target, 2 threads, n={FRAMES} ({mbps:.1} Mbit/s produced at 30 fps) | {} | {} |",
                ms(percentile(&encode[k], 0.5)),
                ms(percentile(&encode[k], 0.99))
            );
        }
    }
}
