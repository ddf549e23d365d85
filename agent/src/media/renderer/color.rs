//! BT.601 limited-range colour conversion (what H.264 decoders in browsers
//! assume for untagged streams): RGB 0..1 <-> Y 16..235, U/V 16..240.

use super::frame::I420Frame;
use super::math::Rgb;

/// Luma of a 0..1 RGB colour (callers clamp first).
pub fn rgb_to_y(c: Rgb) -> u8 {
    (16.5 + 65.481 * c.x + 128.553 * c.y + 24.966 * c.z) as u8
}

/// Chroma (U = Cb, V = Cr) of a 0..1 RGB colour.
pub fn rgb_to_uv(c: Rgb) -> (u8, u8) {
    let u = 128.5 - 37.797 * c.x - 74.203 * c.y + 112.0 * c.z;
    let v = 128.5 + 112.0 * c.x - 93.786 * c.y - 18.214 * c.z;
    (u as u8, v as u8)
}

/// Inverse conversion of one sample to 8-bit RGB.
pub fn yuv_to_rgb(y: u8, u: u8, v: u8) -> [u8; 3] {
    let c = 1.164_383 * (y as f32 - 16.0);
    let d = u as f32 - 128.0;
    let e = v as f32 - 128.0;
    let q = |x: f32| (x + 0.5).clamp(0.0, 255.0) as u8;
    [
        q(c + 1.596_027 * e),
        q(c - 0.391_762 * d - 0.812_968 * e),
        q(c + 2.017_232 * d),
    ]
}

/// Whole frame to packed 8-bit RGB (for snapshots and tests, not the hot path).
pub fn i420_to_rgb24(frame: &I420Frame) -> Vec<u8> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let cw = frame.chroma_width() as usize;
    let (yp, up, vp) = (frame.y(), frame.u(), frame.v());
    let mut out = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let ci = (y / 2) * cw + x / 2;
            let s = |p: &[u8], i: usize, def: u8| p.get(i).copied().unwrap_or(def);
            out.extend_from_slice(&yuv_to_rgb(
                s(yp, y * w + x, 16),
                s(up, ci, 128),
                s(vp, ci, 128),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::math::Vec3;
    use super::*;

    fn v(r: f32, g: f32, b: f32) -> Vec3 {
        Vec3::new(r, g, b)
    }

    #[test]
    fn round_trip_is_close() {
        for &(r, g, b) in &[
            (0.0, 0.0, 0.0),
            (1.0, 1.0, 1.0),
            (0.8, 0.2, 0.1),
            (0.1, 0.3, 0.9),
        ] {
            let c = v(r, g, b);
            let (u, vv) = rgb_to_uv(c);
            let out = yuv_to_rgb(rgb_to_y(c), u, vv);
            for (o, i) in out.iter().zip([r, g, b]) {
                assert!(
                    (*o as f32 - i * 255.0).abs() <= 3.0,
                    "{out:?} vs {r} {g} {b}"
                );
            }
        }
        assert_eq!(rgb_to_y(v(0.0, 0.0, 0.0)), 16);
        assert_eq!(rgb_to_y(v(1.0, 1.0, 1.0)), 235);
    }
}
