//! Deterministic randomness for the procedural assets: a tiny PRNG (so the
//! picture is identical on every run and machine) and 3D gradient noise / fBm
//! evaluated on the unit sphere (so equirectangular textures have no seam).

use super::math::{fast_floor, Vec3};

/// SplitMix64: tiny, fast, statistically fine for picking star positions and craters.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 * (1.0 / (1u64 << 24) as f32)
    }

    /// Uniformly distributed direction on the unit sphere.
    pub fn unit_vector(&mut self) -> Vec3 {
        let z = self.next_f32() * 2.0 - 1.0;
        let phi = self.next_f32() * std::f32::consts::TAU;
        let r = (1.0 - z * z).max(0.0).sqrt();
        Vec3::new(r * phi.cos(), z, r * phi.sin())
    }

    /// Approximately normal(0, 1) via the sum of uniforms (cheap, bounded tails).
    pub fn gaussian(&mut self) -> f32 {
        (0..4).map(|_| self.next_f32()).sum::<f32>() * 1.732 - 3.464
    }
}

/// Integer lattice hash (avalanche mix); the seed separates independent noise fields.
fn hash(ix: i32, iy: i32, iz: i32, seed: u32) -> u32 {
    let mut h = (ix as u32).wrapping_mul(0x8DA6_B343)
        ^ (iy as u32).wrapping_mul(0xD816_3841)
        ^ (iz as u32).wrapping_mul(0xCB1A_B31F)
        ^ seed.wrapping_mul(0x165_667B1);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    h = h.wrapping_mul(0x297A_2D39);
    h ^ (h >> 15)
}

/// The 12 cube-edge gradients of improved Perlin noise (plus 4 repeats for a power of two).
const GRADIENTS: [(f32, f32, f32); 16] = [
    (1.0, 1.0, 0.0),
    (-1.0, 1.0, 0.0),
    (1.0, -1.0, 0.0),
    (-1.0, -1.0, 0.0),
    (1.0, 0.0, 1.0),
    (-1.0, 0.0, 1.0),
    (1.0, 0.0, -1.0),
    (-1.0, 0.0, -1.0),
    (0.0, 1.0, 1.0),
    (0.0, -1.0, 1.0),
    (0.0, 1.0, -1.0),
    (0.0, -1.0, -1.0),
    (1.0, 1.0, 0.0),
    (-1.0, 1.0, 0.0),
    (0.0, -1.0, 1.0),
    (0.0, -1.0, -1.0),
];

fn fade(t: f32) -> f32 {
    t * t * t * (t * (t * 6.0 - 15.0) + 10.0)
}

fn lerp(a: f32, b: f32, t: f32) -> f32 {
    a + (b - a) * t
}

/// 3D gradient noise, roughly in [-1, 1], zero at lattice points.
pub fn gradient_noise(p: Vec3, seed: u32) -> f32 {
    let (fx0, fy0, fz0) = (fast_floor(p.x), fast_floor(p.y), fast_floor(p.z));
    let (ix, iy, iz) = (fx0 as i32, fy0 as i32, fz0 as i32);
    let (fx, fy, fz) = (p.x - fx0, p.y - fy0, p.z - fz0);
    let corner = |dx: i32, dy: i32, dz: i32| {
        let g = GRADIENTS[(hash(ix + dx, iy + dy, iz + dz, seed) & 15) as usize];
        g.0 * (fx - dx as f32) + g.1 * (fy - dy as f32) + g.2 * (fz - dz as f32)
    };
    let (u, v, w) = (fade(fx), fade(fy), fade(fz));
    let x00 = lerp(corner(0, 0, 0), corner(1, 0, 0), u);
    let x10 = lerp(corner(0, 1, 0), corner(1, 1, 0), u);
    let x01 = lerp(corner(0, 0, 1), corner(1, 0, 1), u);
    let x11 = lerp(corner(0, 1, 1), corner(1, 1, 1), u);
    lerp(lerp(x00, x10, v), lerp(x01, x11, v), w)
}

/// Fractal Brownian motion: `octaves` layers, each twice the frequency and half
/// the amplitude; normalised so the result stays roughly in [-1, 1].
pub fn fbm(p: Vec3, octaves: u32, seed: u32) -> f32 {
    let mut sum = 0.0;
    let mut amp = 1.0;
    let mut norm = 0.0;
    let mut q = p;
    for o in 0..octaves {
        sum += amp * gradient_noise(q, seed.wrapping_add(o * 7919));
        norm += amp;
        amp *= 0.5;
        // Offset each octave so lattice-aligned artefacts do not stack up.
        q = q * 2.03 + Vec3::new(17.3, 9.1, 5.7);
    }
    if norm > 0.0 {
        sum / norm
    } else {
        0.0
    }
}
