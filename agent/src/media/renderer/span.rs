//! Ray casting for one span of a row (the part inside a body's screen box).
//!
//! Pixels are first classified cheaply (`Scene::probe`); pixels solidly inside
//! the planet disc are then textured and lit in separate passes over the whole
//! span. Each pass has independent iterations, so the CPU overlaps the long
//! per-pixel dependency chains (sqrt, division, texture fetch) instead of
//! waiting on them one pixel at a time. Edge, halo and moon pixels take the
//! general `Scene::shade` path.
//!
//! When the planet texture is magnified (`Scene::interior_stride` > 1), only
//! every stride-th pixel is cast inside the disc and the pixels between two
//! solid ones are interpolated, which bounds the cost when the planet fills
//! the screen.

use super::math::{Rgb, Vec3};
use super::scene::Scene;
use super::shade::Probe;
use super::texture::Packed;

/// A pixel solidly inside the planet disc, waiting for its texture and light.
#[derive(Clone, Copy)]
struct SolidPixel {
    index: usize,
    normal: Vec3,
    dir: Vec3,
    texel: Packed,
}

/// Per-thread buffers, reused across spans and frames.
#[derive(Default)]
pub struct SpanScratch {
    solid: Vec<SolidPixel>,
    /// Per cast pixel: was it solid? (only used when stride > 1)
    anchors: Vec<(usize, bool)>,
}

/// Shades `span` in place (it holds the sky colours on entry); `ray(i)` is the
/// un-normalised direction of the span's i-th pixel.
pub fn cast_span(
    scene: &Scene,
    span: &mut [Rgb],
    ray: impl Fn(usize) -> Vec3,
    scratch: &mut SpanScratch,
) {
    let len = span.len();
    if len == 0 {
        return;
    }
    let stride = scene.interior_stride.max(1);
    scratch.solid.clear();
    scratch.anchors.clear();

    // Pass 1: classify the cast pixels (every stride-th, plus the last).
    let cast = (0..len)
        .step_by(stride)
        .chain((stride > 1 && !(len - 1).is_multiple_of(stride)).then_some(len - 1));
    for i in cast {
        let solid = match scene.probe(ray(i)) {
            Probe::Sky => false,
            Probe::Solid { normal, dir } => {
                scratch.solid.push(SolidPixel {
                    index: i,
                    normal,
                    dir,
                    texel: Packed(0),
                });
                true
            }
            Probe::Other => {
                if let Some(px) = span.get_mut(i) {
                    *px = scene.shade(ray(i), *px);
                }
                false
            }
        };
        if stride > 1 {
            scratch.anchors.push((i, solid));
        }
    }

    // Pass 2: texture fetches; pass 3: lighting.
    for p in scratch.solid.iter_mut() {
        p.texel = scene.planet_texel(p.normal);
    }
    for p in &scratch.solid {
        if let Some(px) = span.get_mut(p.index) {
            *px = scene.planet_light(p.normal, p.dir, p.texel);
        }
    }

    // Pass 4 (stride > 1): fill the gaps between cast pixels.
    for pair in scratch.anchors.windows(2) {
        let [(a, a_solid), (b, b_solid)] = [pair[0], pair[1]];
        if b <= a + 1 || b >= len {
            continue;
        }
        if a_solid && b_solid {
            let (ca, cb) = (span[a], span[b]);
            let dt = 1.0 / (b - a) as f32;
            for (k, px) in span[a + 1..b].iter_mut().enumerate() {
                *px = ca.lerp(cb, (k + 1) as f32 * dt);
            }
        } else {
            for (i, px) in (a + 1..b).zip(span[a + 1..b].iter_mut()) {
                *px = scene.shade(ray(i), *px);
            }
        }
    }
}
