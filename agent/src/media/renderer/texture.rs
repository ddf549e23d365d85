//! Equirectangular textures: storage, parallel generation and bilinear sampling.
//! u (longitude) wraps around the globe; v (latitude) clamps at the poles.

use super::math::{fast_floor, Rgb, Vec3};
use std::f32::consts::{PI, TAU};

pub struct Texture<T> {
    width: usize,
    height: usize,
    texels: Vec<T>,
}

/// The four texel indices and weights of one bilinear lookup.
struct Taps {
    i00: usize,
    i10: usize,
    i01: usize,
    i11: usize,
    fx: f32,
    fy: f32,
}

impl<T: Copy + Default + Send> Texture<T> {
    /// Builds a `width` x `height` texture by evaluating `f` at each texel's
    /// direction on the unit sphere. Rows are split across threads because the
    /// noise functions are costly and this runs at start-up.
    pub fn from_sphere_fn<F>(width: usize, height: usize, f: F) -> Self
    where
        F: Fn(Vec3) -> T + Sync,
    {
        let width = width.max(1);
        let height = height.max(1);
        let mut texels = vec![T::default(); width * height];
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let rows_per_job = height.div_ceil(threads);
        std::thread::scope(|s| {
            for (job, block) in texels.chunks_mut(rows_per_job * width).enumerate() {
                let f = &f;
                s.spawn(move || {
                    for (i, texel) in block.iter_mut().enumerate() {
                        let x = i % width;
                        let y = job * rows_per_job + i / width;
                        *texel = f(texel_direction(x, y, width, height));
                    }
                });
            }
        });
        Self {
            width,
            height,
            texels,
        }
    }

    #[inline(always)]
    fn taps(&self, u: f32, v: f32) -> Taps {
        let (w, h) = (self.width, self.height);
        // Wrap u into [0, 1]; NaN falls through the saturating casts to index
        // 0 and every index is clamped, so no lookup can go out of bounds.
        let x = (u - fast_floor(u)) * w as f32 - 0.5;
        let y = (v * h as f32 - 0.5).clamp(0.0, (h - 1) as f32);
        let x0f = fast_floor(x);
        let x0 = if x0f < 0.0 {
            w - 1
        } else {
            (x0f as usize).min(w - 1)
        };
        let x1 = if x0 + 1 >= w { 0 } else { x0 + 1 };
        let y0 = (y as usize).min(h - 1);
        let y1 = (y0 + 1).min(h - 1);
        Taps {
            i00: y0 * w + x0,
            i10: y0 * w + x1,
            i01: y1 * w + x0,
            i11: y1 * w + x1,
            fx: x - x0f,
            fy: y - y0 as f32,
        }
    }
}

/// Unit direction of texel (x, y)'s centre; inverse of `direction_to_uv`.
pub fn texel_direction(x: usize, y: usize, width: usize, height: usize) -> Vec3 {
    let lon = ((x as f32 + 0.5) / width as f32 - 0.5) * TAU;
    let lat = (0.5 - (y as f32 + 0.5) / height as f32) * PI;
    let (slat, clat) = lat.sin_cos();
    let (slon, clon) = lon.sin_cos();
    Vec3::new(clat * clon, slat, clat * slon)
}

/// Texture coordinates of a unit direction (fast approximations; renderer hot path).
pub fn direction_to_uv(d: Vec3) -> (f32, f32) {
    let lon = super::math::fast_atan2(d.z, d.x);
    let lat = super::math::fast_asin(d.y);
    (lon * (1.0 / TAU) + 0.5, 0.5 - lat * (1.0 / PI))
}

fn bilerp(a: f32, b: f32, c: f32, d: f32, fx: f32, fy: f32) -> f32 {
    let top = a + (b - a) * fx;
    let bottom = c + (d - c) * fx;
    top + (bottom - top) * fy
}

impl Texture<u8> {
    /// Bilinear sample scaled to 0..1.
    #[inline(always)]
    pub fn sample(&self, u: f32, v: f32) -> f32 {
        let t = self.taps(u, v);
        let p = &self.texels;
        let g = |i: usize| p.get(i).copied().unwrap_or(0) as f32;
        bilerp(g(t.i00), g(t.i10), g(t.i01), g(t.i11), t.fx, t.fy) * (1.0 / 255.0)
    }
}

impl Texture<u64> {
    /// Bilinear sample of 8 packed 8-bit channels at once (SWAR: each channel
    /// gets a 16-bit lane, so one multiply blends four channels). About twice
    /// as fast as float bilinear, and one lookup serves every planet channel.
    #[inline(always)]
    pub fn sample_packed(&self, u: f32, v: f32) -> Packed {
        const LANES: u64 = 0x00FF_00FF_00FF_00FF;
        let t = self.taps(u, v);
        let p = &self.texels;
        let g = |i: usize| p.get(i).copied().unwrap_or(0);
        let wx = ((t.fx * 256.0) as u64).min(256);
        let wy = ((t.fy * 256.0) as u64).min(256);
        // Lane-wise a + (b - a) * w / 256 for w in 0..=256, without overflow:
        // a * (256 - w) + b * w <= 255 * 256 fits a 16-bit lane.
        let blend = |a: u64, b: u64, w: u64| {
            let lo = ((a & LANES) * (256 - w) + (b & LANES) * w) >> 8;
            let hi = (((a >> 8) & LANES) * (256 - w) + ((b >> 8) & LANES) * w) >> 8;
            (lo & LANES) | ((hi & LANES) << 8)
        };
        let top = blend(g(t.i00), g(t.i10), wx);
        let bottom = blend(g(t.i01), g(t.i11), wx);
        Packed(blend(top, bottom, wy))
    }
}

/// Eight 8-bit channels from a packed texel (channel k = byte k, little endian).
#[derive(Clone, Copy, Debug)]
pub struct Packed(pub u64);

impl Packed {
    pub fn pack(channels: [u8; 8]) -> Self {
        Self(u64::from_le_bytes(channels))
    }

    /// Channel `k` scaled to 0..1.
    #[inline(always)]
    pub fn channel(self, k: u32) -> f32 {
        ((self.0 >> (8 * k)) & 0xFF) as f32 * (1.0 / 255.0)
    }
}

impl Texture<Rgb> {
    pub fn sample(&self, u: f32, v: f32) -> Rgb {
        let t = self.taps(u, v);
        let p = &self.texels;
        let g = |i: usize| p.get(i).copied().unwrap_or_default();
        let top = g(t.i00).lerp(g(t.i10), t.fx);
        let bottom = g(t.i01).lerp(g(t.i11), t.fx);
        top.lerp(bottom, t.fy)
    }
}

pub fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uv_round_trips_texel_centres() {
        let (w, h) = (64, 32);
        for &(x, y) in &[(0, 0), (63, 31), (17, 9), (40, 20)] {
            let (u, v) = direction_to_uv(texel_direction(x, y, w, h));
            assert!((u * w as f32 - (x as f32 + 0.5)).abs() < 0.01, "u {x}");
            assert!((v * h as f32 - (y as f32 + 0.5)).abs() < 0.01, "v {y}");
        }
    }

    #[test]
    fn packed_sampling_blends_lanes() {
        let t = Texture::<u64>::from_sphere_fn(4, 2, |d| {
            let c = if d.x > 0.0 { 255 } else { 0 };
            Packed::pack([c, 255 - c, 128, 0, 7, 255, 0, 1]).0
        });
        for u in 0..40 {
            let s = t.sample_packed(u as f32 / 40.0, 0.3);
            assert!((s.channel(0) + s.channel(1) - 1.0).abs() < 0.02);
            assert!((s.channel(2) - 128.0 / 255.0).abs() < 0.01);
            assert!((s.channel(5) - 1.0).abs() < 0.01);
        }
    }

    #[test]
    fn sampling_never_panics() {
        let t = Texture::<u8>::from_sphere_fn(8, 4, |d| to_u8(d.y));
        for &u in &[
            f32::NAN,
            f32::INFINITY,
            -1e30,
            -1e-9,
            0.0,
            0.999_999,
            1.0,
            7.5,
        ] {
            for &v in &[f32::NAN, -5.0, 0.0, 1.0, 9.0] {
                let _ = t.sample(u, v);
            }
        }
    }
}
