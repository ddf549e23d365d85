//! Per-ray geometry: analytic intersection with the planet (plus atmosphere)
//! and the moon, anti-aliased limbs, and depth-ordered compositing over the
//! sky colour. What the surfaces look like lives in `material`.

use super::math::{clamp01, Rgb, Vec3};
use super::scene::{Scene, ATMOSPHERE_RADIUS, MOON_RADIUS};

/// Closest approach of a ray to a sphere centre.
struct Approach {
    /// Ray parameter of the closest point.
    tc: f32,
    /// Squared distance from the centre at the closest point.
    h2: f32,
}

/// `oc` = ray origin minus sphere centre, `d` unit direction. None when the
/// sphere is behind the ray (or the origin is inside it).
#[inline(always)]
fn approach(oc: Vec3, d: Vec3, radius: f32) -> Option<Approach> {
    let b = oc.dot(d);
    let oc2 = oc.dot(oc);
    if b >= 0.0 || oc2 <= radius * radius {
        return None;
    }
    Some(Approach {
        tc: -b,
        h2: (oc2 - b * b).max(0.0),
    })
}

/// Visible part of a sphere in one pixel.
struct Surface {
    depth: f32,
    /// Fraction of the pixel covered (edge anti-aliasing).
    coverage: f32,
    normal: Vec3,
}

/// Coverage is estimated from how far inside the limb the ray passes, in units
/// of the pixel footprint; partially covered pixels shade the limb point.
/// Interior pixels take a fast path without the division.
#[inline(always)]
fn surface(a: &Approach, oc: Vec3, d: Vec3, radius: f32, pixel_angle: f32) -> Option<Surface> {
    let r2 = radius * radius;
    let footprint = pixel_angle * a.tc;
    let inner = radius - 0.5 * footprint;
    if inner > 0.0 && a.h2 < inner * inner {
        let t = a.tc - (r2 - a.h2).sqrt();
        return Some(Surface {
            depth: t,
            coverage: 1.0,
            normal: (oc + d * t) * (1.0 / radius),
        });
    }
    let h = a.h2.sqrt();
    let coverage = clamp01((radius - h) / footprint + 0.5);
    if coverage <= 0.0 {
        return None;
    }
    let (depth, point) = if a.h2 < r2 {
        let t = a.tc - (r2 - a.h2).sqrt();
        (t, oc + d * t)
    } else {
        (a.tc, (oc + d * a.tc) * (radius / h.max(1e-6)))
    };
    Some(Surface {
        depth,
        coverage,
        normal: point * (1.0 / radius),
    })
}

/// True if a ray (any length, `a` = its squared length, `b` = oc . dir) passes
/// within the radius encoded in `cull` (= |oc|^2 - r^2) in front of the
/// origin. No square root or division, so background pixels stay cheap.
#[inline(always)]
fn may_hit(b: f32, a: f32, cull: f32) -> bool {
    b < 0.0 && cull * a < b * b
}

impl Scene<'_> {
    /// Colour of the ray `dir` (any length) given the sky colour behind it.
    #[inline(always)]
    pub fn shade(&self, dir: Vec3, background: Rgb) -> Rgb {
        let pos = self.view.position;
        let len2 = dir.dot(dir);
        let planet_near = may_hit(pos.dot(dir), len2, self.planet_cull);
        let moon_near = may_hit(self.moon_oc.dot(dir), len2, self.moon_cull);
        if !(planet_near || moon_near) {
            return background;
        }
        let d = dir * (1.0 / len2.sqrt().max(1e-20));
        let mut colour = background;

        let planet = planet_near.then(|| approach(pos, d, 1.0)).flatten();
        let moon = moon_near
            .then(|| approach(self.moon_oc, d, MOON_RADIUS))
            .flatten()
            .and_then(|a| surface(&a, self.moon_oc, d, MOON_RADIUS, self.pixel_angle));
        let planet_depth = planet.as_ref().map_or(f32::INFINITY, |a| a.tc - 1.0);
        let moon_in_front = moon.as_ref().is_some_and(|m| m.depth < planet_depth);

        if let (Some(m), false) = (&moon, moon_in_front) {
            colour = colour.lerp(self.moon_colour(m.normal), m.coverage);
        }
        if let Some(a) = &planet {
            colour = self.planet_over(a, pos, d, colour);
        }
        if let (Some(m), true) = (&moon, moon_in_front) {
            colour = colour.lerp(self.moon_colour(m.normal), m.coverage);
        }
        colour
    }

    /// Composites the atmosphere halo and the planet disc over `behind`.
    #[inline(always)]
    fn planet_over(&self, a: &Approach, pos: Vec3, d: Vec3, behind: Rgb) -> Rgb {
        let Some(s) = surface(a, pos, d, 1.0, self.pixel_angle) else {
            return behind + self.halo_at(a, pos, d);
        };
        if s.coverage >= 1.0 {
            // Fully covered: the halo behind is invisible.
            return self.planet_colour(s.normal, d);
        }
        let halo = behind + self.halo_at(a, pos, d);
        halo.lerp(self.planet_colour(s.normal, d), s.coverage)
    }

    fn halo_at(&self, a: &Approach, pos: Vec3, d: Vec3) -> Rgb {
        if a.h2 >= ATMOSPHERE_RADIUS * ATMOSPHERE_RADIUS {
            return Vec3::ZERO;
        }
        let h = a.h2.sqrt();
        self.halo(h, (pos + d * a.tc) * (1.0 / h.max(1e-6)))
    }

    /// Cheap classification used by the batched span renderer: is this ray
    /// sky only, solidly inside the planet disc (returns unit normal and unit
    /// direction), or anything else (edges, halo, moon: use `shade`)?
    #[inline(always)]
    pub fn probe(&self, dir: Vec3) -> Probe {
        let pos = self.view.position;
        let len2 = dir.dot(dir);
        if may_hit(self.moon_oc.dot(dir), len2, self.moon_cull) {
            return Probe::Other;
        }
        if !may_hit(pos.dot(dir), len2, self.planet_cull) {
            return Probe::Sky;
        }
        let d = dir * (1.0 / len2.sqrt().max(1e-20));
        let Some(a) = approach(pos, d, 1.0) else {
            return Probe::Sky;
        };
        let inner = 1.0 - 0.5 * self.pixel_angle * a.tc;
        if inner > 0.0 && a.h2 < inner * inner {
            let t = a.tc - (1.0 - a.h2).sqrt();
            Probe::Solid {
                normal: pos + d * t,
                dir: d,
            }
        } else {
            Probe::Other
        }
    }
}

/// See `Scene::probe`.
pub enum Probe {
    Sky,
    Solid { normal: Vec3, dir: Vec3 },
    Other,
}
