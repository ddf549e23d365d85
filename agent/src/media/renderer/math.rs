//! Small vector/matrix helpers plus fast approximations of the transcendental
//! functions used per pixel: exact libm calls are too slow for the inner loop,
//! and texture lookups only need ~1e-4 rad of accuracy.

use std::f32::consts::{FRAC_PI_2, PI};
use std::ops::{Add, Mul, Neg, Sub};

/// 3-component vector; also used for linear RGB colours (x = r, y = g, z = b)
/// so colour maths can share the same operators.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Vec3 {
    pub x: f32,
    pub y: f32,
    pub z: f32,
}

/// Colour alias: components are r, g, b in nominal 0..1 display range.
pub type Rgb = Vec3;

impl Vec3 {
    pub const ZERO: Self = Self::new(0.0, 0.0, 0.0);

    pub const fn new(x: f32, y: f32, z: f32) -> Self {
        Self { x, y, z }
    }

    pub fn dot(self, o: Self) -> f32 {
        self.x * o.x + self.y * o.y + self.z * o.z
    }

    pub fn cross(self, o: Self) -> Self {
        Self::new(
            self.y * o.z - self.z * o.y,
            self.z * o.x - self.x * o.z,
            self.x * o.y - self.y * o.x,
        )
    }

    pub fn length(self) -> f32 {
        self.dot(self).sqrt()
    }

    /// Unit vector, or `fallback` for zero/non-finite input so callers never see NaN.
    pub fn normalized_or(self, fallback: Self) -> Self {
        let len = self.length();
        if len > 1e-20 && len.is_finite() {
            self * (1.0 / len)
        } else {
            fallback
        }
    }

    pub fn is_finite(self) -> bool {
        self.x.is_finite() && self.y.is_finite() && self.z.is_finite()
    }

    /// Component-wise product (used for tinting colours).
    pub fn mul_elem(self, o: Self) -> Self {
        Self::new(self.x * o.x, self.y * o.y, self.z * o.z)
    }

    pub fn lerp(self, o: Self, t: f32) -> Self {
        self + (o - self) * t
    }

    /// Clamps each component to 0..1 (NaN becomes 0 via `max` semantics).
    pub fn clamp01(self) -> Self {
        Self::new(clamp01(self.x), clamp01(self.y), clamp01(self.z))
    }
}

impl Add for Vec3 {
    type Output = Self;
    fn add(self, o: Self) -> Self {
        Self::new(self.x + o.x, self.y + o.y, self.z + o.z)
    }
}

impl Sub for Vec3 {
    type Output = Self;
    fn sub(self, o: Self) -> Self {
        Self::new(self.x - o.x, self.y - o.y, self.z - o.z)
    }
}

impl Mul<f32> for Vec3 {
    type Output = Self;
    fn mul(self, s: f32) -> Self {
        Self::new(self.x * s, self.y * s, self.z * s)
    }
}

impl Neg for Vec3 {
    type Output = Self;
    fn neg(self) -> Self {
        Self::new(-self.x, -self.y, -self.z)
    }
}

/// Row-major 3x3 matrix; used only for rotations, so the inverse is the transpose.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Mat3 {
    pub rows: [Vec3; 3],
}

impl Mat3 {
    pub fn from_rows(a: Vec3, b: Vec3, c: Vec3) -> Self {
        Self { rows: [a, b, c] }
    }

    pub fn rotation_x(a: f32) -> Self {
        let (s, c) = a.sin_cos();
        Self::from_rows(
            Vec3::new(1.0, 0.0, 0.0),
            Vec3::new(0.0, c, -s),
            Vec3::new(0.0, s, c),
        )
    }

    pub fn rotation_y(a: f32) -> Self {
        let (s, c) = a.sin_cos();
        Self::from_rows(
            Vec3::new(c, 0.0, s),
            Vec3::new(0.0, 1.0, 0.0),
            Vec3::new(-s, 0.0, c),
        )
    }

    pub fn rotation_z(a: f32) -> Self {
        let (s, c) = a.sin_cos();
        Self::from_rows(
            Vec3::new(c, -s, 0.0),
            Vec3::new(s, c, 0.0),
            Vec3::new(0.0, 0.0, 1.0),
        )
    }

    pub fn transpose(&self) -> Self {
        let [a, b, c] = self.rows;
        Self::from_rows(
            Vec3::new(a.x, b.x, c.x),
            Vec3::new(a.y, b.y, c.y),
            Vec3::new(a.z, b.z, c.z),
        )
    }

    pub fn mul_vec(&self, v: Vec3) -> Vec3 {
        Vec3::new(
            self.rows[0].dot(v),
            self.rows[1].dot(v),
            self.rows[2].dot(v),
        )
    }

    /// Matrix product `self * o` (apply `o` first, then `self`).
    pub fn mul_mat(&self, o: &Self) -> Self {
        let t = o.transpose();
        let row = |r: Vec3| Vec3::new(r.dot(t.rows[0]), r.dot(t.rows[1]), r.dot(t.rows[2]));
        Self::from_rows(row(self.rows[0]), row(self.rows[1]), row(self.rows[2]))
    }
}

pub fn clamp01(x: f32) -> f32 {
    x.clamp(0.0, 1.0)
}

/// Hermite step. Written with a reciprocal so that, inlined with constant
/// edges, the division folds away (this runs several times per pixel).
#[inline(always)]
pub fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = clamp01((x - e0) * (1.0 / (e1 - e0)));
    t * t * (3.0 - 2.0 * t)
}

/// floor() without the libm call the baseline x86-64 target makes for
/// `f32::floor` (no SSE4.1). Exact for |x| < 2^31; NaN gives 0.
#[inline(always)]
pub fn fast_floor(x: f32) -> f32 {
    let t = x as i32 as f32;
    if t > x {
        t - 1.0
    } else {
        t
    }
}

/// atan2 with ~1e-5 rad max error (Abramowitz & Stegun 4.4.49 polynomial on
/// [0, 1] plus octant fix-up).
pub fn fast_atan2(y: f32, x: f32) -> f32 {
    let ax = x.abs();
    let ay = y.abs();
    let mx = ax.max(ay);
    if mx <= 0.0 {
        return 0.0;
    }
    let a = ax.min(ay) / mx;
    let s = a * a;
    let mut r =
        a * (0.999_866 + s * (-0.330_299_5 + s * (0.180_141 + s * (-0.085_133 + s * 0.020_835_1))));
    if ay > ax {
        r = FRAC_PI_2 - r;
    }
    if x < 0.0 {
        r = PI - r;
    }
    if y < 0.0 {
        -r
    } else {
        r
    }
}

/// asin with ~7e-5 rad max error (Abramowitz & Stegun 4.4.45); input is clamped to [-1, 1].
pub fn fast_asin(x: f32) -> f32 {
    let ax = clamp01(x.abs());
    let p = ((-0.018_729_3 * ax + 0.074_261) * ax - 0.212_114_4) * ax + 1.570_728_8;
    let r = FRAC_PI_2 - (1.0 - ax).sqrt() * p;
    if x < 0.0 {
        -r
    } else {
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_trig_is_accurate() {
        for i in -100..=100 {
            let x = i as f32 / 100.0;
            assert!((fast_asin(x) - x.asin()).abs() < 2e-4, "asin {x}");
            for j in -10..=10 {
                let y = j as f32 / 3.0;
                assert!(
                    (fast_atan2(y, x) - y.atan2(x)).abs() < 3e-5,
                    "atan2 {y} {x}"
                );
            }
        }
    }
}
