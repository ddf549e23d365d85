//! The built-in instance's picture: the software renderer, steered by viewer input the way
//! OpenSpace's navigation is (drag orbits, Shift+drag pans, Ctrl+drag zooms and rolls, wheel
//! zooms), with the frame stamp in the corner.

use std::time::Instant;

use super::frame::I420Frame;
use super::input::{InputEvent, KeyAction, PointerAction, Velocity};
use super::pipeline::FrameSource;
use super::renderer::stamp::draw_stamp;
use super::renderer::Renderer;

/// Radians of orbit per CSS pixel of drag.
const ORBIT_PER_PIXEL: f32 = 0.005;
/// Planet radii of pan per CSS pixel of drag.
const PAN_PER_PIXEL: f32 = 0.004;
/// Zoom factor per wheel "pixel" (a notch is about 100).
const ZOOM_PER_WHEEL: f32 = 0.001;
/// Radians per second (orbit) or zoom rate while an arrow/WASD key is held.
const KEY_RATE: f32 = 0.8;

pub struct BuiltinSource {
    renderer: Renderer,
    started: Instant,
    last_frame: Option<Instant>,
    /// Velocity from held keys, added to the flight-controller velocity.
    keys: Velocity,
    api: Velocity,
}

impl BuiltinSource {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            renderer: Renderer::new(width, height),
            started: Instant::now(),
            last_frame: None,
            keys: Velocity::default(),
            api: Velocity::default(),
        }
    }

    fn apply_velocity(&mut self) {
        self.renderer
            .camera_mut()
            .set_velocity(self.keys + self.api);
    }

    fn key(&mut self, code: &str, down: bool) {
        let rate = if down { KEY_RATE } else { 0.0 };
        match code {
            "ArrowLeft" | "KeyA" => self.keys.orbit_x = -rate,
            "ArrowRight" | "KeyD" => self.keys.orbit_x = rate,
            "ArrowUp" | "KeyW" => self.keys.orbit_y = -rate,
            "ArrowDown" | "KeyS" => self.keys.orbit_y = rate,
            "KeyQ" => self.keys.roll = -rate,
            "KeyE" => self.keys.roll = rate,
            "Equal" | "NumpadAdd" | "PageUp" => self.keys.zoom = rate,
            "Minus" | "NumpadSubtract" | "PageDown" => self.keys.zoom = -rate,
            "Home" | "KeyR" if down => self.renderer.camera_mut().reset(),
            _ => return,
        }
        self.apply_velocity();
    }
}

impl FrameSource for BuiltinSource {
    fn next_frame(&mut self, frame: &mut I420Frame, frame_number: u32, wall_ms: u64) {
        let now = Instant::now();
        let dt = self.last_frame.map_or(0.0, |t| (now - t).as_secs_f32());
        self.last_frame = Some(now);
        self.renderer.camera_mut().step(dt);
        let t = (now - self.started).as_secs_f64();
        self.renderer.render(t, frame);
        draw_stamp(frame, frame_number, (wall_ms & 0xFF_FFFF) as u32);
    }

    fn resize(&mut self, width: u32, height: u32) {
        self.renderer.resize(width, height);
    }

    fn input(&mut self, event: InputEvent) {
        match event {
            InputEvent::Pointer {
                action: PointerAction::Move,
                dx,
                dy,
                buttons,
                modifiers,
                ..
            } if buttons != 0 => {
                let camera = self.renderer.camera_mut();
                if modifiers.shift || buttons & 4 != 0 {
                    camera.pan(-dx * PAN_PER_PIXEL, dy * PAN_PER_PIXEL);
                } else if modifiers.ctrl || buttons & 2 != 0 {
                    camera.zoom((dy * ZOOM_PER_WHEEL * 5.0).exp());
                    camera.roll(dx * ORBIT_PER_PIXEL);
                } else {
                    camera.orbit(-dx * ORBIT_PER_PIXEL, -dy * ORBIT_PER_PIXEL);
                }
            }
            InputEvent::Pointer { .. } => {}
            InputEvent::Wheel { dy, .. } => {
                self.renderer.camera_mut().zoom((dy * ZOOM_PER_WHEEL).exp())
            }
            InputEvent::Key { action, code, .. } => self.key(&code, action == KeyAction::Down),
            InputEvent::Velocity(v) => {
                self.api = v;
                self.apply_velocity();
            }
            InputEvent::FieldOfView { horizontal_degrees } => {
                let (w, h) = self.renderer.size();
                let half = (horizontal_degrees.to_radians() * 0.5).tan();
                let fov_y = 2.0 * (half * h as f32 / w.max(1) as f32).atan();
                self.renderer.camera_mut().set_fov_y(fov_y);
            }
        }
    }
}
