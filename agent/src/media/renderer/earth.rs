//! Procedural Earth-like planet texture, generated once from noise on the
//! sphere. All layers share one packed texel (see `channel`) so the renderer
//! needs a single bilinear lookup per pixel. Fixed seeds: every run matches.

use super::math::{smoothstep, Rgb, Vec3};
use super::noise::{fbm, gradient_noise};
use super::texture::{to_u8, Packed, Texture};

pub const SIZE: (usize, usize) = (1024, 512);

/// Channel layout of the packed planet texel.
pub mod channel {
    pub const RED: u32 = 0;
    pub const GREEN: u32 = 1;
    pub const BLUE: u32 = 2;
    /// Specular (open water) mask.
    pub const WATER: u32 = 3;
    pub const CLOUD: u32 = 4;
    /// City lights, shown on the night side.
    pub const LIGHTS: u32 = 5;
}

/// Noise value of the coastline; chosen so roughly a third of the globe is land.
const SEA_LEVEL: f32 = 0.04;
/// Half-width (in elevation units) of the land/sea colour blend.
const COAST_BLEND: f32 = 0.004;

/// Generates the packed planet texture (channels in `channel`).
pub fn generate() -> Texture<u64> {
    Texture::from_sphere_fn(SIZE.0, SIZE.1, |d| {
        let (colour, water, light) = surface_texel(d);
        let cloud = cloud_texel(d);
        let (r, g, b) = (to_u8(colour.x), to_u8(colour.y), to_u8(colour.z));
        Packed::pack([r, g, b, to_u8(water), to_u8(cloud), to_u8(light), 0, 0]).0
    })
}

const DEEP_OCEAN: Rgb = Vec3::new(0.015, 0.045, 0.15);
const SHALLOW_OCEAN: Rgb = Vec3::new(0.04, 0.19, 0.29);
const SEA_ICE: Rgb = Vec3::new(0.80, 0.86, 0.92);
const FOREST: Rgb = Vec3::new(0.08, 0.19, 0.06);
const GRASS: Rgb = Vec3::new(0.23, 0.32, 0.11);
const SAVANNA: Rgb = Vec3::new(0.50, 0.44, 0.25);
const DESERT: Rgb = Vec3::new(0.80, 0.65, 0.43);
const TUNDRA: Rgb = Vec3::new(0.38, 0.36, 0.29);
const ROCK: Rgb = Vec3::new(0.35, 0.30, 0.26);
const SNOW: Rgb = Vec3::new(0.93, 0.95, 0.98);

fn gauss(x: f32, centre: f32, width: f32) -> f32 {
    let t = (x - centre) / width;
    (-t * t).exp()
}

/// Surface colour, specular (water) mask and city-light intensity for direction `d`.
fn surface_texel(d: Vec3) -> (Rgb, f32, f32) {
    // Domain warping bends the continents into less blobby, more coastline-rich shapes.
    let q = d * 1.4;
    let warp = Vec3::new(
        fbm(q, 3, 11),
        fbm(q + Vec3::new(5.2, 1.3, 7.7), 3, 12),
        fbm(q + Vec3::new(9.1, 4.4, 2.6), 3, 13),
    );
    let elevation = fbm(d * 1.8 + warp * 1.1, 8, 21);
    let land = elevation - SEA_LEVEL;
    let alat = d.y.abs();
    let detail = fbm(d * 30.0, 3, 23);
    let temperature = 1.0 - alat * alat * alat * 1.1 - land.max(0.0) * 2.2 + detail * 0.08;

    // Coasts blend over a narrow elevation band (about a texel wide) so the
    // magnified, bilinear-filtered coastline is smooth instead of stair-stepped.
    let shore = smoothstep(-COAST_BLEND, COAST_BLEND, land);
    let (sea_colour, sea_water) = ocean(land, temperature, detail);
    if shore <= 0.0 {
        return (sea_colour, sea_water, 0.0);
    }
    let (land_colour, light) = continent(d, land.max(0.0), alat, temperature, detail);
    (
        sea_colour.lerp(land_colour, shore),
        sea_water * (1.0 - shore),
        light * shore,
    )
}

/// Ocean colour (shallow to deep, sea ice when cold) and specular mask.
fn ocean(land: f32, temperature: f32, detail: f32) -> (Rgb, f32) {
    let depth = smoothstep(0.0, 0.12, -land);
    let water = SHALLOW_OCEAN.lerp(DEEP_OCEAN, depth);
    let ice = smoothstep(0.14, 0.06, temperature);
    (water.lerp(SEA_ICE * (0.95 + detail * 0.06), ice), 1.0 - ice)
}

/// Land colour by biome, and city-light intensity.
fn continent(d: Vec3, land: f32, alat: f32, temperature: f32, detail: f32) -> (Rgb, f32) {
    // Moisture: noise plus Earth-like circulation (wet tropics, dry subtropics,
    // drier interiors further from the coast).
    let moisture = fbm(d * 2.3 + Vec3::new(3.3, 8.8, 1.1), 4, 31);
    let dryness = 0.3 - moisture * 2.2 + 0.4 * gauss(alat, 0.42, 0.12)
        - 0.3 * gauss(alat, 0.0, 0.16)
        + land * 0.8;
    let mut colour = FOREST.lerp(GRASS, smoothstep(0.2, 0.45, dryness));
    colour = colour.lerp(SAVANNA, smoothstep(0.45, 0.62, dryness));
    colour = colour.lerp(DESERT, smoothstep(0.62, 0.78, dryness));
    colour = colour.lerp(ROCK, smoothstep(0.10, 0.28, land));
    colour = colour.lerp(TUNDRA, smoothstep(0.42, 0.26, temperature));
    let snow = smoothstep(0.2, 0.1, temperature);
    colour = colour.lerp(SNOW, snow) * (0.92 + detail * 0.3 * (1.0 - 0.7 * snow));

    // City lights: clustered dots in habitable (not frozen, not desert) land.
    let habitable = (1.0 - snow) * (1.0 - smoothstep(0.55, 0.75, dryness));
    let mut light = 0.0;
    if habitable > 0.01 {
        let population = smoothstep(0.0, 0.2, fbm(d * 3.1 + Vec3::new(7.0, 2.0, 5.0), 3, 41));
        let coast = 1.0 - smoothstep(0.0, 0.12, land) * 0.6;
        let dots = gradient_noise(d * 70.0, 51) + gradient_noise(d * 150.0, 52) * 0.6;
        light = smoothstep(0.12, 0.5, dots) * population * habitable * coast;
    }
    (colour, light)
}

/// Cloud coverage for direction `d`: lightly warped fBm stretched along the
/// latitude lines, denser in the tropics' ITCZ and the mid-latitude storm belts,
/// sparse over the subtropical highs; a second, finer field breaks up the edges.
fn cloud_texel(d: Vec3) -> f32 {
    let q = d * 2.2;
    let warp = Vec3::new(fbm(q, 3, 61), fbm(q + Vec3::new(3.1, 7.4, 1.9), 3, 62), 0.0);
    let p = Vec3::new(d.x * 3.0, d.y * 7.0, d.z * 3.0) + warp * 1.3;
    let c = fbm(p, 7, 63);
    let fine = fbm(d * 22.0 + warp, 3, 64);
    let alat = d.y.abs();
    let bias = 0.1 * gauss(alat, 0.05, 0.1) + 0.08 * gauss(alat, 0.75, 0.15)
        - 0.1 * gauss(alat, 0.4, 0.12)
        - 0.12 * gauss(alat, 1.0, 0.12);
    let coverage = smoothstep(-0.02, 0.3, c + bias + fine * 0.3);
    coverage * (0.35 + 0.55 * coverage)
}
