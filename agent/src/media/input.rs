//! The one input type every path produces (the viewer's data channel, the OpenSpace JSON API)
//! and every source consumes (the built-in renderer's camera, later XTEST).

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PointerAction {
    Down,
    Move,
    Up,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAction {
    Down,
    Up,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Modifiers {
    #[serde(default)]
    pub shift: bool,
    #[serde(default)]
    pub ctrl: bool,
    #[serde(default)]
    pub alt: bool,
    #[serde(default)]
    pub meta: bool,
}

/// Camera velocities in the OpenSpace flight controller's axes (per second, persistent until
/// the next change). Positive `zoom` moves closer.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Velocity {
    pub orbit_x: f32,
    pub orbit_y: f32,
    pub zoom: f32,
    pub pan_x: f32,
    pub pan_y: f32,
    pub roll: f32,
}

impl std::ops::Add for Velocity {
    type Output = Velocity;

    fn add(self, o: Velocity) -> Velocity {
        Velocity {
            orbit_x: self.orbit_x + o.orbit_x,
            orbit_y: self.orbit_y + o.orbit_y,
            zoom: self.zoom + o.zoom,
            pan_x: self.pan_x + o.pan_x,
            pan_y: self.pan_y + o.pan_y,
            roll: self.roll + o.roll,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum InputEvent {
    /// `x`, `y` in 0..1 of the picture; `dx`, `dy` in CSS pixels since the last event.
    Pointer {
        action: PointerAction,
        x: f32,
        y: f32,
        dx: f32,
        dy: f32,
        button: u8,
        buttons: u8,
        modifiers: Modifiers,
    },
    Wheel {
        dx: f32,
        dy: f32,
    },
    /// `code` is the browser's `KeyboardEvent.code`, e.g. `KeyW`, `ArrowLeft`.
    Key {
        action: KeyAction,
        code: String,
        modifiers: Modifiers,
    },
    Velocity(Velocity),
    /// The camera's horizontal field of view in degrees (OpenSpace's
    /// `RenderEngine.HorizFieldOfView`); the vertical one follows from the picture's aspect.
    FieldOfView {
        horizontal_degrees: f32,
    },
}
