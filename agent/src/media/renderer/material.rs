//! What a surface point looks like: the planet's textured, lit surface (split
//! into texture fetch and lighting so the renderer can batch the two stages),
//! its atmosphere glow, and the moon.

use super::earth::channel::{BLUE, CLOUD, GREEN, LIGHTS, RED, WATER};
use super::math::{clamp01, smoothstep, Rgb, Vec3};
use super::scene::{Scene, ATMOSPHERE_RADIUS, MOON_RADIUS};
use super::texture::{direction_to_uv, Packed};

const SUN: Rgb = Vec3::new(1.12, 1.08, 1.02);
const AMBIENT: f32 = 0.012;
const ATMOSPHERE: Rgb = Vec3::new(0.28, 0.52, 1.0);
const TWILIGHT: Rgb = Vec3::new(1.0, 0.6, 0.38);
const CITY: Rgb = Vec3::new(1.0, 0.72, 0.36);
const MOON_TINT: Rgb = Vec3::new(1.0, 0.97, 0.93);
const EARTHSHINE: Rgb = Vec3::new(0.02, 0.03, 0.05);

impl Scene<'_> {
    /// Planet colour at unit normal `n` seen along unit direction `d`.
    #[inline(always)]
    pub fn planet_colour(&self, n: Vec3, d: Vec3) -> Rgb {
        self.planet_light(n, d, self.planet_texel(n))
    }

    /// All planet layers at unit normal `n` (one packed bilinear lookup).
    #[inline(always)]
    pub fn planet_texel(&self, n: Vec3) -> Packed {
        let (u, v) = direction_to_uv(self.planet_to_body.mul_vec(n));
        self.assets.earth.sample_packed(u, v)
    }

    /// Lights a planet texel: soft Lambert terminator, ocean glint, clouds,
    /// city lights at night and a fresnel-like atmosphere rim.
    #[inline(always)]
    pub fn planet_light(&self, n: Vec3, d: Vec3, texel: Packed) -> Rgb {
        let albedo = Vec3::new(
            texel.channel(RED),
            texel.channel(GREEN),
            texel.channel(BLUE),
        );
        let water = texel.channel(WATER);
        let cloud = texel.channel(CLOUD);
        let ndl = n.dot(self.sun);
        let nd = n.dot(d);

        // Soft terminator: a little light wraps past 90 degrees and is reddened,
        // as sunlight is when it grazes through an atmosphere.
        let day = smoothstep(-0.12, 0.12, ndl);
        let twilight = day * (1.0 - smoothstep(0.0, 0.3, ndl));
        let sun = SUN.lerp(SUN.mul_elem(TWILIGHT), twilight * 0.7);
        let light = sun * (ndl.max(0.0) * 0.93 + day * 0.07);
        let ambient = Vec3::new(AMBIENT, AMBIENT, AMBIENT);
        let mut colour = albedo.mul_elem(light + ambient);

        if water > 0.02 && ndl > 0.0 {
            // Phong glint from the reflected view ray (unit length, so no
            // normalisation); powers by repeated squaring instead of powf.
            let x = clamp01(d.dot(self.sun) - 2.0 * nd * ndl);
            let x2 = x * x;
            let x4 = x2 * x2;
            let x16 = x4 * x4 * x4 * x4;
            let x64 = x16 * x16 * x16 * x16;
            let x128 = x64 * x64;
            let spec = (x128 * 0.7 + x4 * 0.04) * water * day * (1.0 - cloud);
            colour = colour + sun * spec;
        }

        colour = colour.lerp(light * 0.95 + ambient, cloud);

        let night = 1.0 - smoothstep(-0.25, 0.02, ndl);
        if night > 0.0 {
            let city = texel.channel(LIGHTS);
            colour = colour + CITY * (city * night * (1.0 - 0.8 * cloud) * 0.9);
        }

        // Atmosphere: fresnel-like rim plus a faint blue haze over the day side.
        let k = 1.0 - clamp01(-nd);
        let rim = k * k * k;
        let haze = smoothstep(-0.25, 0.4, ndl);
        colour * (1.0 - rim * 0.4) + ATMOSPHERE * ((rim * 0.85 + 0.05) * haze)
    }

    /// Atmosphere glow for a ray passing `h` from the planet centre with
    /// closest point direction `closest` (unit): bright at the limb, fading
    /// out at ATMOSPHERE_RADIUS, stronger on the day side.
    pub fn halo(&self, h: f32, closest: Vec3) -> Rgb {
        let glow = clamp01((ATMOSPHERE_RADIUS - h) * (1.0 / (ATMOSPHERE_RADIUS - 1.0)));
        let lit = smoothstep(-0.35, 0.3, closest.dot(self.sun));
        ATMOSPHERE * (glow * glow * lit * 0.8)
    }

    /// Moon colour at unit normal `n`: Lambert, planet shadow, earthshine.
    pub fn moon_colour(&self, n: Vec3) -> Rgb {
        let (u, v) = direction_to_uv(self.moon_to_body.mul_vec(n));
        let albedo = self.assets.moon.sample(u, v);
        let mut lambert = clamp01(n.dot(self.sun) * 1.05);
        // Planet shadow (eclipse): does the path to the sun pass the planet?
        let p = self.moon_centre + n * MOON_RADIUS;
        let b = p.dot(self.sun);
        if b < 0.0 && lambert > 0.0 {
            let miss = (p.dot(p) - b * b).max(0.0).sqrt();
            lambert *= smoothstep(0.9, 1.08, miss);
        }
        // Earthshine lights the side facing the planet a little.
        let facing = clamp01(-n.dot(self.moon_centre.normalized_or(Vec3::ZERO)));
        let light = SUN * lambert + EARTHSHINE * facing + Vec3::new(AMBIENT, AMBIENT, AMBIENT);
        MOON_TINT.mul_elem(light) * albedo
    }
}
