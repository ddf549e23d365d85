//! Procedural grey, cratered moon albedo: dark maria from low-frequency noise
//! plus a power-law population of craters (dark floor, bright rim, faint rays).

use super::math::{smoothstep, Vec3};
use super::noise::{fbm, Rng};
use super::texture::{to_u8, Texture};

pub const MOON_SIZE: (usize, usize) = (256, 128);
const CRATER_COUNT: usize = 260;
const SEED: u64 = 0x5EED_300D;

struct Crater {
    centre: Vec3,
    /// Angular radius (radians ~ chord length for small craters).
    radius: f32,
    depth: f32,
}

pub fn generate() -> Texture<u8> {
    let mut rng = Rng::new(SEED);
    let craters: Vec<Crater> = (0..CRATER_COUNT)
        .map(|_| {
            let u = rng.next_f32();
            Crater {
                centre: rng.unit_vector(),
                // Many small craters, few large ones.
                radius: 0.025 + 0.22 * u * u * u * u,
                depth: 0.6 + 0.4 * rng.next_f32(),
            }
        })
        .collect();
    Texture::from_sphere_fn(MOON_SIZE.0, MOON_SIZE.1, |d| moon_texel(d, &craters))
}

fn moon_texel(d: Vec3, craters: &[Crater]) -> u8 {
    let maria = smoothstep(0.02, 0.12, fbm(d * 1.6, 4, 71));
    let grain = fbm(d * 12.0, 3, 72);
    let mut albedo = 0.62 - maria * 0.24 + grain * 0.08;
    for c in craters {
        // Chord distance approximates the angle for small craters and is cheaper.
        let dist = (d - c.centre).length() / c.radius;
        if dist < 1.0 {
            let bowl = 1.0 - dist * dist;
            albedo -= 0.16 * c.depth * bowl * smoothstep(0.0, 0.35, 1.0 - dist);
            albedo += 0.10 * c.depth * smoothstep(0.75, 0.98, dist);
        } else if dist < 1.25 {
            albedo += 0.10 * c.depth * (1.25 - dist) * 4.0 * 0.5;
        } else if dist < 3.0 && c.radius < 0.06 {
            // Small fresh craters keep faint bright ejecta rays.
            albedo += 0.02 * (3.0 - dist);
        }
    }
    to_u8(albedo)
}
