//! Orbit camera around the planet (radius 1 at the origin), driven either by
//! direct deltas (mouse drags) or by persistent velocities integrated in
//! `step`, like OpenSpace's flight controller. Every input is sanitised so a
//! bad client message can never put NaN into the renderer.

use super::math::Vec3;
use std::f32::consts::{PI, TAU};

const DEFAULT_AZIMUTH: f32 = 0.35;
const DEFAULT_ELEVATION: f32 = 0.18;
/// With the default field of view the planet spans ~51% of the frame height.
const DEFAULT_DISTANCE: f32 = 4.8;
pub const DEFAULT_FOV_Y: f32 = 45.0 * PI / 180.0;
/// Stops short of the poles, where the orbit basis would flip.
const MAX_ELEVATION: f32 = 1.45;
/// Minimum gap between camera and planet surface (planet radii); keeps the camera outside.
const MIN_CLEARANCE: f32 = 0.15;
const MAX_DISTANCE: f32 = 60.0;
/// How far the look-at point may wander from the planet centre (planet radii).
const MAX_PAN: f32 = 4.0;
/// Cap on velocities so `step` stays well-behaved whatever a client sends.
const MAX_VELOCITY: f32 = 20.0;
/// Longest time step `step` integrates, so a stalled frame cannot fling the camera.
const MAX_STEP: f32 = 0.1;

/// Persistent camera velocities, per second: the input layer's type, so viewer input and the
/// OpenSpace flight controller feed the camera without conversion. `zoom > 0` zooms in
/// (distance shrinks by `exp(-zoom * dt)`).
pub use super::super::input::Velocity as CameraVelocity;

#[derive(Clone, Debug, PartialEq)]
pub struct Camera {
    azimuth: f32,
    elevation: f32,
    distance: f32,
    target: Vec3,
    roll: f32,
    fov_y: f32,
    velocity: CameraVelocity,
}

/// Everything the renderer needs from the camera for one frame at one size.
#[derive(Clone, Copy, Debug)]
pub struct View {
    pub position: Vec3,
    pub right: Vec3,
    pub up: Vec3,
    pub forward: Vec3,
    /// Focal length in pixels.
    pub focal: f32,
    /// Principal point in pixel-index space (pixel (i, j) is centred on (i, j)).
    pub cx: f32,
    pub cy: f32,
    pub width: usize,
    pub height: usize,
}

impl View {
    /// Un-normalised ray direction through pixel (x, y).
    pub fn ray(&self, x: f32, y: f32) -> Vec3 {
        self.forward
            + self.right * ((x - self.cx) / self.focal)
            + self.up * ((self.cy - y) / self.focal)
    }
}

impl Default for Camera {
    fn default() -> Self {
        Self {
            azimuth: DEFAULT_AZIMUTH,
            elevation: DEFAULT_ELEVATION,
            distance: DEFAULT_DISTANCE,
            target: Vec3::ZERO,
            roll: 0.0,
            fov_y: DEFAULT_FOV_Y,
            velocity: CameraVelocity::default(),
        }
    }
}

/// Wraps an angle into [-pi, pi) so it never loses precision by growing.
fn wrap_angle(a: f32) -> f32 {
    (a + PI).rem_euclid(TAU) - PI
}

fn sanitise(v: f32) -> f32 {
    if v.is_finite() {
        v.clamp(-MAX_VELOCITY, MAX_VELOCITY)
    } else {
        0.0
    }
}

impl Camera {
    /// Rotates around the look-at point: `dx` radians of azimuth, `dy` of elevation.
    pub fn orbit(&mut self, dx: f32, dy: f32) {
        if !(dx.is_finite() && dy.is_finite()) {
            return;
        }
        self.azimuth = wrap_angle(self.azimuth + dx);
        self.elevation = (self.elevation + dy).clamp(-MAX_ELEVATION, MAX_ELEVATION);
    }

    /// Multiplies the distance by `factor` (< 1 zooms in), clamped to the sane range.
    pub fn zoom(&mut self, factor: f32) {
        if !(factor.is_finite() && factor > 0.0) {
            return;
        }
        self.distance = (self.distance * factor).clamp(self.min_distance(), MAX_DISTANCE);
    }

    /// Shifts the look-at point (and the camera with it) in the view plane, in planet radii.
    pub fn pan(&mut self, dx: f32, dy: f32) {
        if !(dx.is_finite() && dy.is_finite()) {
            return;
        }
        // Clamp first so huge inputs cannot overflow to infinity (and NaN).
        let (dx, dy) = (
            dx.clamp(-2.0 * MAX_PAN, 2.0 * MAX_PAN),
            dy.clamp(-2.0 * MAX_PAN, 2.0 * MAX_PAN),
        );
        let (right, up, _) = self.basis();
        let target = self.target + right * dx + up * dy;
        let len = target.length();
        self.target = if len > MAX_PAN {
            target * (MAX_PAN / len)
        } else {
            target
        };
        // Keep |camera| >= distance - |target| >= 1 + clearance (outside the planet).
        self.distance = self.distance.clamp(self.min_distance(), MAX_DISTANCE);
    }

    pub fn roll(&mut self, radians: f32) {
        if radians.is_finite() {
            self.roll = wrap_angle(self.roll + radians);
        }
    }

    /// Sets the vertical field of view (radians), clamped to 5..170 degrees; non-finite ignored.
    pub fn set_fov_y(&mut self, radians: f32) {
        if radians.is_finite() {
            self.fov_y = radians.clamp(5f32.to_radians(), 170f32.to_radians());
        }
    }

    pub fn fov_y(&self) -> f32 {
        self.fov_y
    }

    pub fn set_velocity(&mut self, v: CameraVelocity) {
        self.velocity = CameraVelocity {
            orbit_x: sanitise(v.orbit_x),
            orbit_y: sanitise(v.orbit_y),
            zoom: sanitise(v.zoom),
            pan_x: sanitise(v.pan_x),
            pan_y: sanitise(v.pan_y),
            roll: sanitise(v.roll),
        };
    }

    pub fn velocity(&self) -> CameraVelocity {
        self.velocity
    }

    /// Integrates the velocities over `dt` seconds (clamped to 0.1 s).
    pub fn step(&mut self, dt: f32) {
        if !(dt.is_finite() && dt > 0.0) {
            return;
        }
        let dt = dt.min(MAX_STEP);
        let v = self.velocity;
        self.orbit(v.orbit_x * dt, v.orbit_y * dt);
        self.zoom((-v.zoom * dt).exp());
        self.pan(v.pan_x * dt, v.pan_y * dt);
        self.roll(v.roll * dt);
    }

    /// Back to the default view, velocities cleared.
    pub fn reset(&mut self) {
        *self = Self::default();
    }

    pub fn distance(&self) -> f32 {
        self.distance
    }

    pub fn target(&self) -> Vec3 {
        self.target
    }

    fn min_distance(&self) -> f32 {
        1.0 + MIN_CLEARANCE + self.target.length()
    }

    pub fn position(&self) -> Vec3 {
        let (se, ce) = self.elevation.sin_cos();
        let (sa, ca) = self.azimuth.sin_cos();
        self.target + Vec3::new(ce * sa, se, ce * ca) * self.distance
    }

    /// Camera axes (right, up, forward), including roll.
    pub fn basis(&self) -> (Vec3, Vec3, Vec3) {
        let (se, ce) = self.elevation.sin_cos();
        let (sa, ca) = self.azimuth.sin_cos();
        let forward = -Vec3::new(ce * sa, se, ce * ca);
        let right = forward
            .cross(Vec3::new(0.0, 1.0, 0.0))
            .normalized_or(Vec3::new(1.0, 0.0, 0.0));
        let up = right.cross(forward);
        let (sr, cr) = self.roll.sin_cos();
        (right * cr + up * sr, up * cr - right * sr, forward)
    }

    /// Per-frame view for a `width` x `height` picture.
    pub fn view(&self, width: usize, height: usize) -> View {
        let (right, up, forward) = self.basis();
        View {
            position: self.position(),
            right,
            up,
            forward,
            focal: 0.5 * height as f32 / (0.5 * self.fov_y).tan(),
            cx: width as f32 * 0.5 - 0.5,
            cy: height as f32 * 0.5 - 0.5,
            width,
            height,
        }
    }
}
