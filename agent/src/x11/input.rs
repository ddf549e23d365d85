//! Viewer input into the display through XTEST, as if a mouse and keyboard were attached:
//! absolute pointer motion, buttons, the wheel as buttons 4-7, keys by keysym.

use std::collections::HashMap;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;

use super::{keymap, X11Error};
use crate::media::input::{InputEvent, KeyAction, PointerAction};

/// Wheel distance (browser pixels) per emitted click; a mouse notch is about 100.
const WHEEL_STEP: f32 = 50.0;

pub struct Injector {
    root: xproto::Window,
    /// keysym -> keycode, from the server's keyboard mapping.
    keycodes: HashMap<u32, u8>,
    wheel: (f32, f32),
}

impl Injector {
    pub fn new(conn: &impl Connection, root: xproto::Window) -> Result<Self, X11Error> {
        conn.xtest_get_version(2, 2)?.reply()?;
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let mapping = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        let per = usize::from(mapping.keysyms_per_keycode.max(1));
        let mut keycodes = HashMap::new();
        // Column 0 is the unshifted symbol, the one keymap.rs names; the first keycode wins.
        for (i, syms) in mapping.keysyms.chunks(per).enumerate() {
            if let Some(&sym) = syms.first() {
                if sym != 0 {
                    keycodes.entry(sym).or_insert(min + i as u8);
                }
            }
        }
        Ok(Self {
            root,
            keycodes,
            wheel: (0.0, 0.0),
        })
    }

    /// Injects one event on a screen of `width` x `height`. Unknown keys are skipped.
    pub fn inject(
        &mut self,
        conn: &impl Connection,
        event: &InputEvent,
        (width, height): (u32, u32),
    ) -> Result<(), X11Error> {
        match event {
            InputEvent::Pointer {
                action,
                x,
                y,
                button,
                ..
            } => {
                let px = (x.clamp(0.0, 1.0) * (width.max(1) - 1) as f32).round() as i16;
                let py = (y.clamp(0.0, 1.0) * (height.max(1) - 1) as f32).round() as i16;
                self.fake(conn, xproto::MOTION_NOTIFY_EVENT, 0, px, py)?;
                // Browser buttons 0, 1, 2 (left, middle, right) are X buttons 1, 2, 3.
                let detail = button.saturating_add(1).min(3);
                match action {
                    PointerAction::Down => {
                        self.fake(conn, xproto::BUTTON_PRESS_EVENT, detail, 0, 0)?
                    }
                    PointerAction::Up => {
                        self.fake(conn, xproto::BUTTON_RELEASE_EVENT, detail, 0, 0)?
                    }
                    PointerAction::Move => {}
                }
            }
            InputEvent::Wheel { dx, dy } => {
                self.wheel.0 += dx;
                self.wheel.1 += dy;
                // X: 4 up, 5 down, 6 left, 7 right.
                for (axis, less, more) in [(1, 4u8, 5u8), (0, 6, 7)] {
                    let total = if axis == 1 {
                        &mut self.wheel.1
                    } else {
                        &mut self.wheel.0
                    };
                    let clicks = (*total / WHEEL_STEP).trunc();
                    *total -= clicks * WHEEL_STEP;
                    let button = if clicks < 0.0 { less } else { more };
                    for _ in 0..(clicks.abs() as u32).min(20) {
                        self.fake(conn, xproto::BUTTON_PRESS_EVENT, button, 0, 0)?;
                        self.fake(conn, xproto::BUTTON_RELEASE_EVENT, button, 0, 0)?;
                    }
                }
            }
            InputEvent::Key { action, code, .. } => {
                let Some(keycode) = keymap::keysym(code).and_then(|s| self.keycodes.get(&s)) else {
                    return Ok(());
                };
                let kind = match action {
                    KeyAction::Down => xproto::KEY_PRESS_EVENT,
                    KeyAction::Up => xproto::KEY_RELEASE_EVENT,
                };
                self.fake(conn, kind, *keycode, 0, 0)?;
            }
            // Flight-controller velocities only steer the built-in renderer's camera.
            InputEvent::Velocity(_) | InputEvent::FieldOfView { .. } => {}
        }
        conn.flush()?;
        Ok(())
    }

    fn fake(
        &self,
        conn: &impl Connection,
        kind: u8,
        detail: u8,
        x: i16,
        y: i16,
    ) -> Result<(), X11Error> {
        conn.xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)?;
        Ok(())
    }
}
