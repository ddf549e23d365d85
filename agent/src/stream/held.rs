//! What one viewer holds down on its instance: keys and pointer buttons pressed through its data
//! channel and not yet released. When the viewer goes away (page closed, connection lost, control
//! handed to another viewer, channel closed between a key-down and its key-up), everything it
//! held is released, so no key or button sticks for the next viewer (a held Ctrl would turn the
//! next viewer's "a" into Ctrl-A). Pure bookkeeping; `stream::viewer` applies the releases.

use std::collections::BTreeSet;

use crate::media::input::{InputEvent, KeyAction, Modifiers, PointerAction};

/// Keys (`KeyboardEvent.code`) and buttons (browser numbering: 0 left, 1 middle, 2 right)
/// held down, and where the pointer was last (0..1 of the picture).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Held {
    keys: BTreeSet<String>,
    buttons: BTreeSet<u8>,
    pointer: (f32, f32),
}

impl Held {
    /// Notes what `event` presses or releases.
    pub fn track(&mut self, event: &InputEvent) {
        match event {
            InputEvent::Key { action, code, .. } => match action {
                KeyAction::Down => {
                    self.keys.insert(code.clone());
                }
                KeyAction::Up => {
                    self.keys.remove(code);
                }
            },
            InputEvent::Pointer {
                action,
                x,
                y,
                button,
                ..
            } => {
                self.pointer = (*x, *y);
                match action {
                    PointerAction::Down => {
                        self.buttons.insert(*button);
                    }
                    PointerAction::Up => {
                        self.buttons.remove(button);
                    }
                    PointerAction::Move => {}
                }
            }
            InputEvent::Wheel { .. } | InputEvent::Velocity(_) | InputEvent::FieldOfView { .. } => {
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.buttons.is_empty()
    }

    /// The events that release everything held (button-ups at the last pointer position, then
    /// key-ups), and forgets it all.
    pub fn release(&mut self) -> Vec<InputEvent> {
        let (x, y) = self.pointer;
        let buttons = std::mem::take(&mut self.buttons);
        let keys = std::mem::take(&mut self.keys);
        let mut still_down = buttons.iter().fold(0u8, |mask, b| mask | button_mask(*b));
        let mut events = Vec::with_capacity(buttons.len() + keys.len());
        for button in buttons {
            still_down &= !button_mask(button);
            events.push(InputEvent::Pointer {
                action: PointerAction::Up,
                x,
                y,
                dx: 0.0,
                dy: 0.0,
                button,
                buttons: still_down,
                modifiers: Modifiers::default(),
            });
        }
        events.extend(keys.into_iter().map(|code| InputEvent::Key {
            action: KeyAction::Up,
            code,
            modifiers: Modifiers::default(),
        }));
        events
    }
}

/// `MouseEvent.buttons` bit of browser button `button` (0 left = 1, 1 middle = 4, 2 right = 2).
fn button_mask(button: u8) -> u8 {
    match button {
        0 => 1,
        1 => 4,
        2 => 2,
        other => 1u8.checked_shl(u32::from(other)).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(action: KeyAction, code: &str) -> InputEvent {
        InputEvent::Key {
            action,
            code: code.into(),
            modifiers: Modifiers::default(),
        }
    }

    fn pointer(action: PointerAction, button: u8, x: f32) -> InputEvent {
        InputEvent::Pointer {
            action,
            x,
            y: 0.5,
            dx: 0.0,
            dy: 0.0,
            button,
            buttons: 0,
            modifiers: Modifiers::default(),
        }
    }

    #[test]
    fn what_is_still_down_is_released_once() {
        let mut held = Held::default();
        for event in [
            key(KeyAction::Down, "ControlLeft"),
            key(KeyAction::Down, "KeyW"),
            key(KeyAction::Up, "KeyW"),
            pointer(PointerAction::Down, 0, 0.2),
            pointer(PointerAction::Down, 2, 0.3),
            pointer(PointerAction::Move, 0, 0.4),
        ] {
            held.track(&event);
        }
        let released = held.release();
        assert_eq!(released.len(), 3, "{released:?}");
        assert!(
            matches!(&released[0], InputEvent::Pointer { action: PointerAction::Up, button: 0, x, buttons: 2, .. } if *x == 0.4)
        );
        assert!(matches!(
            &released[1],
            InputEvent::Pointer {
                action: PointerAction::Up,
                button: 2,
                buttons: 0,
                ..
            }
        ));
        assert_eq!(released[2], key(KeyAction::Up, "ControlLeft"));
        assert!(held.is_empty());
        assert!(held.release().is_empty(), "nothing twice");
    }

    #[test]
    fn released_keys_and_buttons_are_forgotten() {
        let mut held = Held::default();
        held.track(&key(KeyAction::Down, "KeyA"));
        held.track(&key(KeyAction::Up, "KeyA"));
        held.track(&pointer(PointerAction::Down, 1, 0.5));
        held.track(&pointer(PointerAction::Up, 1, 0.5));
        assert!(held.is_empty());
        assert!(held.release().is_empty());
    }
}
