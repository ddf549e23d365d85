//! Sky at infinity: a catalogue of point stars (projected each frame as
//! sub-pixel sprites, so they stay crisp and move exactly with the camera
//! rotation) and a faint milky-way band stored as a small equirectangular map
//! in galactic coordinates (smooth, so a coarse lookup grid suffices).

use super::camera::View;
use super::math::{smoothstep, Mat3, Rgb, Vec3};
use super::noise::{fbm, Rng};
use super::texture::{direction_to_uv, Texture};

const STAR_COUNT: usize = 20000;
const SEED: u64 = 0x57A2_F1E1_D000_0001;
const BAND_SIZE: (usize, usize) = (512, 256);
/// Flux above which a star also gets a small glow halo.
const HALO_THRESHOLD: f32 = 0.6;
/// Faint blue-black so the sky never looks like dead pixels.
const SKY_BASE: Rgb = Vec3::new(0.004, 0.005, 0.012);

struct Star {
    dir: Vec3,
    colour: Rgb,
    halo: f32,
}

/// A star's position in pixel-index space (pixel (i, j) has its centre at (i, j)).
#[derive(Clone, Copy, Debug)]
pub struct ProjectedStar {
    pub x: f32,
    pub y: f32,
    pub colour: Rgb,
    pub halo: f32,
}

pub struct StarField {
    stars: Vec<Star>,
    band: Texture<Rgb>,
    to_galactic: Mat3,
}

/// Galactic frame: y = galactic pole, x = galactic centre. The pole is chosen so
/// the band crosses the default view diagonally, with the bright core beside the planet.
fn galactic_frame() -> Mat3 {
    let pole = Vec3::new(1.0, 1.0, 0.15).normalized_or(Vec3::new(0.0, 1.0, 0.0));
    let hint = Vec3::new(-0.2, 0.55, -1.0);
    let centre = (hint - pole * pole.dot(hint)).normalized_or(Vec3::new(0.0, 0.0, -1.0));
    let third = centre.cross(pole);
    Mat3::from_rows(centre, pole, third)
}

impl StarField {
    pub fn generate() -> Self {
        let to_galactic = galactic_frame();
        let from_galactic = to_galactic.transpose();
        let mut rng = Rng::new(SEED);
        let stars = (0..STAR_COUNT)
            .map(|i| {
                // Half the stars crowd towards the galactic plane, like the real sky.
                let g = if i % 2 == 0 {
                    let lon = rng.next_f32() * std::f32::consts::TAU;
                    let lat = rng.gaussian() * 0.11;
                    Vec3::new(lat.cos() * lon.cos(), lat.sin(), lat.cos() * lon.sin())
                } else {
                    rng.unit_vector()
                };
                // Pareto-distributed flux (N(>F) ~ F^-1.8): many faint, few bright stars.
                let u = rng.next_f32().max(1e-4);
                let flux = (0.1 * u.powf(-1.0 / 1.8)).min(2.5);
                let tint = match rng.next_f32() {
                    t if t < 0.25 => Vec3::new(0.74, 0.84, 1.0),
                    t if t < 0.65 => Vec3::new(1.0, 1.0, 1.0),
                    t if t < 0.88 => Vec3::new(1.0, 0.92, 0.78),
                    _ => Vec3::new(1.0, 0.74, 0.52),
                };
                Star {
                    dir: from_galactic.mul_vec(g),
                    colour: tint * flux,
                    halo: ((flux - HALO_THRESHOLD) * 0.12).max(0.0),
                }
            })
            .collect();
        let band = Texture::from_sphere_fn(BAND_SIZE.0, BAND_SIZE.1, band_texel);
        Self {
            stars,
            band,
            to_galactic,
        }
    }

    /// Projects visible stars into `out`, sorted by y so each row can find its
    /// stars with a binary search.
    pub fn project(&self, view: &View, out: &mut Vec<ProjectedStar>) {
        out.clear();
        let (w, h) = (view.width as f32, view.height as f32);
        for s in &self.stars {
            let z = s.dir.dot(view.forward);
            if z < 0.02 {
                continue;
            }
            let inv = view.focal / z;
            let x = view.cx + s.dir.dot(view.right) * inv;
            let y = view.cy - s.dir.dot(view.up) * inv;
            if x > -4.0 && x < w + 3.0 && y > -4.0 && y < h + 3.0 {
                out.push(ProjectedStar {
                    x,
                    y,
                    colour: s.colour,
                    halo: s.halo,
                });
            }
        }
        out.sort_unstable_by(|a, b| a.y.total_cmp(&b.y));
    }

    /// Diffuse sky colour (milky way + base) for a unit direction.
    pub fn sky_colour(&self, dir: Vec3) -> Rgb {
        let (u, v) = direction_to_uv(self.to_galactic.mul_vec(dir));
        self.band.sample(u, v) + SKY_BASE
    }
}

/// Milky-way brightness for a direction in galactic coordinates.
fn band_texel(g: Vec3) -> Rgb {
    let lat = g.y.clamp(-1.0, 1.0).asin();
    // 1 towards the galactic centre (+x), falling off over ~60 degrees.
    let core = ((g.x - 1.0) * 2.5).exp();
    // Wavy centre line and varying width so the band does not look ruled.
    let wobble = fbm(g * 1.5, 3, 83) * 0.08;
    let width = 0.09 + 0.08 * core + fbm(g * 2.0, 2, 84).abs() * 0.06;
    let t = (lat - wobble) / width;
    let density = (-t * t).exp();
    let clumps = smoothstep(-0.25, 0.35, fbm(g * 7.0, 5, 81));
    let lane_t = (lat - wobble - 0.01) / (0.025 + 0.03 * core);
    let dust = 1.0 - 0.85 * (-lane_t * lane_t).exp() * smoothstep(-0.2, 0.15, fbm(g * 9.0, 4, 82));
    let intensity = density * (0.25 + 0.75 * clumps) * dust * (0.5 + 1.5 * core);
    let glow = (-(lat / 0.4) * (lat / 0.4)).exp() * 0.008;
    let colour = Vec3::new(0.62, 0.7, 0.92).lerp(Vec3::new(1.0, 0.9, 0.78), core);
    colour * (intensity * 0.2 + glow)
}
