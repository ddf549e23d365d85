//! The viewer page's data channel ("input"): JSON messages both ways, parsed with clear errors.
//!
//! Page -> agent: `pointer`, `wheel`, `key` (input), `resize` (ask for a RESOLUTION), `ping`.
//! Agent -> page: `hello` (role and size), `pong` (clock sync), `resolution`, `error`.

use serde::Deserialize;
use serde_json::json;

use crate::media::input::{InputEvent, KeyAction, Modifiers, PointerAction};

#[derive(Debug, Clone, PartialEq)]
pub enum ViewerMessage {
    Input(InputEvent),
    Resize { width: u32, height: u32 },
    Ping { t: f64 },
}

/// Larger data channel messages are refused unread.
pub const MAX_CONTROL_BYTES: usize = 4096;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Wire {
    Pointer {
        action: PointerAction,
        #[serde(default)]
        x: f32,
        #[serde(default)]
        y: f32,
        #[serde(default)]
        dx: f32,
        #[serde(default)]
        dy: f32,
        #[serde(default)]
        button: u8,
        #[serde(default)]
        buttons: u8,
        #[serde(flatten)]
        modifiers: Modifiers,
    },
    Wheel {
        #[serde(default)]
        dx: f32,
        #[serde(default)]
        dy: f32,
    },
    Key {
        action: KeyAction,
        code: String,
        #[serde(flatten)]
        modifiers: Modifiers,
    },
    Resize {
        width: u32,
        height: u32,
    },
    Ping {
        t: f64,
    },
}

/// Bounds every number so a hostile page cannot push NaN or huge values into a camera.
fn finite(v: f32, limit: f32) -> f32 {
    if v.is_finite() {
        v.clamp(-limit, limit)
    } else {
        0.0
    }
}

pub fn parse(text: &str) -> Result<ViewerMessage, String> {
    if text.len() > MAX_CONTROL_BYTES {
        return Err(format!("message over {MAX_CONTROL_BYTES} bytes"));
    }
    let wire: Wire = serde_json::from_str(text).map_err(|e| format!("invalid message: {e}"))?;
    Ok(match wire {
        Wire::Pointer {
            action,
            x,
            y,
            dx,
            dy,
            button,
            buttons,
            modifiers,
        } => ViewerMessage::Input(InputEvent::Pointer {
            action,
            x: finite(x, 1.0).max(0.0),
            y: finite(y, 1.0).max(0.0),
            dx: finite(dx, 10_000.0),
            dy: finite(dy, 10_000.0),
            button,
            buttons,
            modifiers,
        }),
        Wire::Wheel { dx, dy } => ViewerMessage::Input(InputEvent::Wheel {
            dx: finite(dx, 10_000.0),
            dy: finite(dy, 10_000.0),
        }),
        Wire::Key {
            action,
            code,
            modifiers,
        } => {
            if code.len() > 64 {
                return Err("key code too long".to_owned());
            }
            ViewerMessage::Input(InputEvent::Key {
                action,
                code,
                modifiers,
            })
        }
        Wire::Resize { width, height } => ViewerMessage::Resize { width, height },
        Wire::Ping { t } if t.is_finite() => ViewerMessage::Ping { t },
        Wire::Ping { .. } => return Err("ping needs a finite t".to_owned()),
    })
}

pub fn hello(controller: bool, resizable: bool, size: (u32, u32)) -> String {
    json!({"type": "hello", "controller": controller, "resizable": resizable, "width": size.0, "height": size.1})
        .to_string()
}

pub fn pong(t: f64, server_ms: u64) -> String {
    json!({"type": "pong", "t": t, "server_ms": server_ms}).to_string()
}

pub fn resolution(width: u32, height: u32) -> String {
    json!({"type": "resolution", "width": width, "height": height}).to_string()
}

pub fn error(message: &str) -> String {
    json!({"type": "error", "message": message}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_messages_parse_into_input() {
        let m = parse(r#"{"type":"pointer","action":"move","x":0.5,"y":0.25,"dx":12,"dy":-3,"buttons":1,"shift":true}"#).unwrap();
        let ViewerMessage::Input(InputEvent::Pointer {
            action,
            dx,
            buttons,
            modifiers,
            ..
        }) = m
        else {
            panic!("{m:?}")
        };
        assert_eq!(
            (action, dx, buttons, modifiers.shift, modifiers.ctrl),
            (PointerAction::Move, 12.0, 1, true, false)
        );
        assert_eq!(
            parse(r#"{"type":"key","action":"down","code":"KeyW","key":"w"}"#).unwrap(),
            ViewerMessage::Input(InputEvent::Key {
                action: KeyAction::Down,
                code: "KeyW".into(),
                modifiers: Modifiers::default()
            })
        );
        assert_eq!(
            parse(r#"{"type":"resize","width":800,"height":600}"#).unwrap(),
            ViewerMessage::Resize {
                width: 800,
                height: 600
            }
        );
        assert_eq!(
            parse(r#"{"type":"ping","t":12.5}"#).unwrap(),
            ViewerMessage::Ping { t: 12.5 }
        );
    }

    #[test]
    fn garbage_is_refused_and_numbers_are_bounded() {
        assert!(parse("nope").is_err());
        assert!(parse(r#"{"type":"teleport"}"#).is_err());
        assert!(parse(r#"{"type":"pointer"}"#).is_err());
        assert!(parse(&format!(
            r#"{{"type":"key","action":"down","code":"{}"}}"#,
            "K".repeat(100)
        ))
        .is_err());
        assert!(parse(&" ".repeat(MAX_CONTROL_BYTES + 1)).is_err());
        let ViewerMessage::Input(InputEvent::Wheel { dy, .. }) =
            parse(r#"{"type":"wheel","dy":1e30}"#).unwrap()
        else {
            panic!()
        };
        assert_eq!(dy, 10_000.0);
    }
}
