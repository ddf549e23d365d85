//! Per-frame scene state: where the bodies are at time `t`, their rotations,
//! the sun, and the screen-space boxes outside which no ray can touch a body
//! (so most background pixels skip the sphere maths entirely).

use super::assets::Assets;
use super::camera::View;
use super::earth::SIZE as EARTH_TEXTURE_SIZE;
use super::math::{Mat3, Vec3};
use super::stars::ProjectedStar;
use std::f64::consts::TAU;
use std::ops::Range;

/// Outer radius of the atmosphere glow (planet radius is 1).
pub const ATMOSPHERE_RADIUS: f32 = 1.06;
pub const MOON_RADIUS: f32 = 0.27;
const MOON_ORBIT_RADIUS: f32 = 2.45;
/// Seconds per revolution; slow enough to read as "rotating", fast enough to see.
pub const PLANET_DAY: f64 = 90.0;
const MOON_MONTH: f64 = 40.0;
const AXIAL_TILT: f32 = 0.41;
const MOON_INCLINATION: f32 = 0.2;
/// Orbit phase at t = 0: beside the planet, in front-left of the default view.
const MOON_PHASE: f64 = 0.45 * TAU;
/// Extra pixels around each box for anti-aliased edges.
const BOX_MARGIN: f32 = 2.0;
const TEXTURE_WIDTH: usize = EARTH_TEXTURE_SIZE.0;

/// Half-open pixel rectangle.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScreenBox {
    pub x0: usize,
    pub x1: usize,
    pub y0: usize,
    pub y1: usize,
}

pub struct Scene<'a> {
    pub view: View,
    pub assets: &'a Assets,
    /// Visible stars, sorted by y.
    pub stars: &'a [ProjectedStar],
    /// Unit vector towards the sun.
    pub sun: Vec3,
    pub planet_to_body: Mat3,
    pub moon_centre: Vec3,
    pub moon_to_body: Mat3,
    /// Angle subtended by one pixel (radians), for edge anti-aliasing.
    pub pixel_angle: f32,
    /// Camera position relative to the moon centre.
    pub moon_oc: Vec3,
    /// |oc|^2 - r^2 of the spheres (atmosphere / moon, plus an anti-aliasing
    /// margin) used for the cheap per-ray rejection test.
    pub planet_cull: f32,
    pub moon_cull: f32,
    /// Pixel stride for interpolated shading inside the planet disc (1, 2, 4 or 8).
    pub interior_stride: usize,
    planet_box: Option<ScreenBox>,
    moon_box: Option<ScreenBox>,
}

/// Fraction of a revolution at time `t`, as an angle; reduced in f64 so a
/// long-running stream keeps full f32 precision.
fn phase(t: f64, period: f64) -> f32 {
    ((t / period).rem_euclid(1.0) * TAU) as f32
}

impl<'a> Scene<'a> {
    pub fn new(view: View, assets: &'a Assets, stars: &'a [ProjectedStar], t: f64) -> Self {
        let t = if t.is_finite() { t } else { 0.0 };
        let spin = phase(t, PLANET_DAY);
        let planet_to_world = Mat3::rotation_z(AXIAL_TILT).mul_mat(&Mat3::rotation_y(spin));
        let orbit = phase(t, MOON_MONTH) + MOON_PHASE as f32;
        // Tidally locked: the moon's body frame turns with its orbit angle.
        let moon_to_world = Mat3::rotation_x(MOON_INCLINATION).mul_mat(&Mat3::rotation_y(-orbit));
        let moon_centre = moon_to_world.mul_vec(Vec3::new(MOON_ORBIT_RADIUS, 0.0, 0.0));
        let planet_box = sphere_box(&view, Vec3::ZERO, ATMOSPHERE_RADIUS);
        let moon_box = sphere_box(&view, moon_centre, MOON_RADIUS);
        let pixel_angle = 1.0 / view.focal;
        let moon_oc = view.position - moon_centre;
        // Partially covered edge pixels reach half a pixel footprint beyond the limb.
        let planet_r = ATMOSPHERE_RADIUS.max(1.0 + pixel_angle * view.position.length());
        let moon_r = MOON_RADIUS + pixel_angle * moon_oc.length();
        Self {
            view,
            assets,
            stars,
            sun: Vec3::new(-0.78, 0.32, 0.55).normalized_or(Vec3::new(0.0, 0.0, 1.0)),
            planet_to_body: planet_to_world.transpose(),
            moon_centre,
            moon_to_body: moon_to_world.transpose(),
            pixel_angle,
            moon_oc,
            planet_cull: view.position.dot(view.position) - planet_r * planet_r,
            moon_cull: moon_oc.dot(moon_oc) - moon_r * moon_r,
            interior_stride: interior_stride(&view),
            planet_box,
            moon_box,
        }
    }

    /// Pixel ranges of row `y` that need ray casting (at most two, disjoint).
    pub fn spans(&self, y: usize) -> [Option<Range<usize>>; 2] {
        let row = |b: Option<ScreenBox>| b.filter(|b| y >= b.y0 && y < b.y1).map(|b| b.x0..b.x1);
        match (row(self.planet_box), row(self.moon_box)) {
            (Some(p), Some(m)) if p.start <= m.end && m.start <= p.end => {
                [Some(p.start.min(m.start)..p.end.max(m.end)), None]
            }
            (p, m) => [p, m],
        }
    }
}

/// How many pixels one planet texel covers at the disc centre decides how
/// sparsely the interior may be shaded without visible loss of detail.
fn interior_stride(view: &View) -> usize {
    let dist2 = view.position.dot(view.position);
    let radius_px = view.focal / (dist2 - 1.0).max(1e-6).sqrt();
    let texel_px = radius_px * std::f32::consts::TAU / TEXTURE_WIDTH as f32;
    match texel_px {
        t if t >= 6.0 => 8,
        t if t >= 3.0 => 4,
        t if t >= 1.25 => 2,
        _ => 1,
    }
}

/// Tangent-angle interval of a sphere projected onto one camera axis:
/// returns (tan_min, tan_max), or None if the sphere lies behind the camera.
fn axis_range(a: f32, z: f32, r: f32) -> Option<(f32, f32)> {
    const LIMIT: f32 = std::f32::consts::FRAC_PI_2 - 1e-3;
    let d = (a * a + z * z).sqrt();
    if d <= r * 1.001 {
        // The camera sits inside the sphere's slab: anything along this axis may hit.
        return Some((f32::NEG_INFINITY, f32::INFINITY));
    }
    let centre = a.atan2(z);
    let half = (r / d).asin();
    let lo = (centre - half).max(-LIMIT);
    let hi = (centre + half).min(LIMIT);
    (lo < hi).then(|| (lo.tan(), hi.tan()))
}

/// Conservative screen box of a sphere (exact tangent-plane bounds, plus margin).
pub fn sphere_box(view: &View, centre: Vec3, radius: f32) -> Option<ScreenBox> {
    let rel = centre - view.position;
    let (x, y, z) = (rel.dot(view.right), rel.dot(view.up), rel.dot(view.forward));
    let (xl, xh) = axis_range(x, z, radius)?;
    let (yl, yh) = axis_range(y, z, radius)?;
    let (w, h) = (view.width as f32, view.height as f32);
    // `clamp` maps +-inf to the frame edges; the casts saturate, so nothing overflows.
    let px0 = (view.cx + xl * view.focal - BOX_MARGIN)
        .floor()
        .clamp(0.0, w) as usize;
    let px1 = (view.cx + xh * view.focal + BOX_MARGIN)
        .ceil()
        .clamp(0.0, w) as usize;
    let py0 = (view.cy - yh * view.focal - BOX_MARGIN)
        .floor()
        .clamp(0.0, h) as usize;
    let py1 = (view.cy - yl * view.focal + BOX_MARGIN)
        .ceil()
        .clamp(0.0, h) as usize;
    (px0 < px1 && py0 < py1).then_some(ScreenBox {
        x0: px0,
        x1: px1,
        y0: py0,
        y1: py1,
    })
}
