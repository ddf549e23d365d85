//! Media benchmarks: render and encode time per frame of the built-in renderer's picture.
//!
//! `cargo bench -p openspace-agent --bench media`

use std::time::{Duration, Instant};

use openspace_agent::media::encoder::{EncoderSettings, H264Encoder, VideoEncoder};
use openspace_agent::media::frame::I420Frame;
use openspace_agent::media::renderer::Renderer;

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
        let mut renderer = Renderer::new(w, h);
        let mut frame = I420Frame::new(w, h);
        let mut encoder = H264Encoder::new(EncoderSettings {
            bitrate_bps: 3_000_000,
            fps: 30.0,
            threads: 2,
        })
        .expect("encoder");
        let (mut render, mut encode, mut bytes) = (Vec::new(), Vec::new(), 0usize);
        let frames = 300;
        for i in 0..frames + 30 {
            // The camera turns as a viewer would turn it, so every frame has real motion.
            renderer.camera_mut().orbit(0.01, 0.002);
            let t = Instant::now();
            renderer.render(i as f64 / 30.0, &mut frame);
            let rendered = t.elapsed();
            let t = Instant::now();
            let out = encoder.encode(&frame, false).expect("encode");
            let encoded = t.elapsed();
            if i >= 30 {
                render.push(rendered);
                encode.push(encoded);
                bytes += out.map_or(0, |o| o.data.len());
            }
        }
        render.sort();
        encode.sort();
        println!(
            "| render {w}x{h} (built-in scene), n={frames} | {} | {} |",
            ms(percentile(&render, 0.5)),
            ms(percentile(&render, 0.99))
        );
        println!(
            "| encode {w}x{h} H.264 openh264, 3 Mbit/s, 2 threads, n={frames} ({:.1} Mbit/s produced at 30 fps) | {} | {} |",
            bytes as f64 * 8.0 * 30.0 / frames as f64 / 1e6,
            ms(percentile(&encode, 0.5)),
            ms(percentile(&encode, 0.99))
        );
    }
}
